"""Graph views and measures of weight matrices (torch-free)."""
