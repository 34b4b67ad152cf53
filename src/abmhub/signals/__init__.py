"""Intent signals: the intake API and the vendor-export importers (contract §3.1)."""
