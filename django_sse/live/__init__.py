"""The live layer: groups, publishing, subscriptions, the per-process hub and replay logs."""
