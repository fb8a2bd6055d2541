import threading

import numpy as np
import pytest


def _threads_match_serial(predictor, jobs, n_threads=8):
    """Each job (a list of the three inputs) predicted by n_threads threads at once equals the serial result."""
    serial = [predictor.predict(*job) for job in jobs]
    results = [None] * len(jobs)
    start = threading.Barrier(n_threads)

    def worker(k):
        start.wait()  # all threads hit predict together
        for i in range(k, len(jobs), n_threads):
            results[i] = predictor.predict(*jobs[i])

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, (got, want) in enumerate(zip(results, serial)):
        np.testing.assert_array_equal(got, want, err_msg=f"job {i}")


@pytest.fixture(scope="session")
def threads_match_serial():
    return _threads_match_serial
