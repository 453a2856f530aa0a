"""A crawl job: Crawl4AI, its network rules, browser mode."""
