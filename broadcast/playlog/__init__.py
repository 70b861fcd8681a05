"""The play log: what every speaker reports it played, kept for the retention period and reported on."""
