"""The local runtime's agent: desired state in SQLite, predictor and training processes, one
gateway port, and a private loopback API that the console's ``local`` backend is the only client
of. One agent per profile; see ``agent`` for how the parts fit."""
