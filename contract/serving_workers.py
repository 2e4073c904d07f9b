"""How each serving worker runs the model: on one torch thread.

The serving container starts a model-server worker per vCPU (TorchServe's default), and the
endpoint emulator answers requests side by side; a worker that also spread its own request
over every core would fight the others for them. bench/serving_latency.py measures it in
process (README, Serving workers): on 2 cores, two requests in flight on one torch thread
each answered 2,191 reviews/s, on two threads each 1,431; one review's predict_fn took
1.92 ms on one thread, 2.13 ms on two.
"""

TORCH_THREADS_PER_WORKER = 1


def worker_environment() -> dict[str, str]:
    """What sets a worker process's torch thread count before torch starts: OpenMP's
    variable, which torch takes as its intra-op default."""
    return {"OMP_NUM_THREADS": str(TORCH_THREADS_PER_WORKER)}
