"""The Kubernetes backend: the official client, a watch-fed cache, rollout semantics."""
