"""The lab's Kubernetes API server: store, verbs, watches, discovery, eviction, faults."""
