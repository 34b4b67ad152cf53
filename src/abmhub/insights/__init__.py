"""What the dashboard's overview shows beyond counts: who is surging, who waits for a touch."""
