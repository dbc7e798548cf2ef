"""Research tools on tuned models: proxy-tuning and the structure analysis (``zoo-analyze``)."""
