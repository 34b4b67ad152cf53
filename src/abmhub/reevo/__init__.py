"""Surface V: the Reevo-compatible activity API (`/api/v2`), an adapter over activities/."""
