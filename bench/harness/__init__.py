"""What the benchmarks share.

* ``common``: paths, the error that stops a run, logging, result files, Ctrl-C handling;
* ``db``: the bench database (create, drop, DSNs);
* ``workload``: the 20-playbook folder and the ``order.paid`` events from a customer pool;
* ``servers``: SMR and the bare endpoint as subprocesses on free ports, same uvicorn flags;
* ``procfs``: CPU and memory of processes, read from ``/proc``;
* ``load``: the closed-loop load driver (fixed concurrency, warm-up then timed);
* ``openloop``: the open-loop driver (a steady rate whatever the answers take).
"""
