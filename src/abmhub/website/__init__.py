"""Website visits: abmhub collects first-party intent itself (contract §9)."""
