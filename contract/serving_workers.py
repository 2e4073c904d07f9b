"""How each serving worker runs the model: on one torch thread.

The serving container starts a model-server worker per vCPU (TorchServe's default), and the
endpoint emulator answers requests side by side; a worker that also spread its own request
over every core would fight the others for them. Measured in process on 2 cores (README,
Benchmarks, session 11): two requests in flight on one torch thread each answered 1,624 to
2,319 reviews/s, two in flight on two threads each 1,286 to 1,384, one request at a time on
two threads 1,463; one review was faster on one thread than on two (2.00 against 2.20 ms).
"""

TORCH_THREADS_PER_WORKER = 1


def worker_environment() -> dict[str, str]:
    """What sets a worker process's torch thread count before torch starts: OpenMP's
    variable, which torch takes as its intra-op default."""
    return {"OMP_NUM_THREADS": str(TORCH_THREADS_PER_WORKER)}
