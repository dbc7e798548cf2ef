"""``zoo-report``: tables and plots of a sweep's runs, with their uncertainty."""
