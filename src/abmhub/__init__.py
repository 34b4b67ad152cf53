"""abmhub — a self-hostable account-based-marketing data hub."""

__version__ = "0.1.0"
