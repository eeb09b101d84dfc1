"""An example Gleaner scraper plugin: a job board with pagination."""
