"""Webhooks: subscriptions, the outbox of events, and their delivery (contract §8)."""
