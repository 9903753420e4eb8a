"""Processing of stored documents: ad-slot detection (ad_detection)."""
