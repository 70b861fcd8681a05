"""Virtual speakers that speak the documented device protocol (``broadcast simulate``)."""
