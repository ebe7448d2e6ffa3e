"""Notifying: the alert built from the day's insight and published to SNS."""
