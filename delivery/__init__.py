"""Delivery: escalations, dead-letter notices and letters reach people by email and webhooks."""
