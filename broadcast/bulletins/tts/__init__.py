"""Text-to-speech engines behind one protocol, their registry and the speech cache."""
