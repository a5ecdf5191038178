"""Kubernetes API access, the only package that imports kubernetes_asyncio.

config (kubeconfig, as kubectl reads it) → client (`KubeClient`: requests with retries, pages,
watches, per-apiserver clients) → reader (`ClusterReader`, the one way observe, the executor
and the drain read the API; `fake.FakeReader` beside it), with `requests` (pure request
builders), `wire` (the msgspec structs) and `errors` (typed API errors) shared by all.
"""
