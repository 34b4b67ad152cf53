"""The sandbox data set of `abmhub seed`: deterministic, realistic, written through the services."""
