"""A real Kubernetes control plane for the tests, built from source and run as plain processes.

``python -m tests.infra.k8s up|down|status`` (or the ``tests/infra/cluster`` shim) builds
kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd and KWOK once per machine
under ``${XDG_CACHE_HOME:-~/.cache}/fleetdeck/`` and runs them with ``kwokctl --runtime=binary``
on loopback; ``autoscaling-up`` runs metrics-server and KEDA beside one (``autoscaling.py``).
Everything here is stdlib-only so it runs before any virtualenv exists.
"""
