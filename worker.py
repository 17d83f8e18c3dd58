"""The worker process: `python worker.py` (or `bulkops worker`). The composition lives in
`bulkops.worker.build_worker`, importable by the CLI, the bench and the tests."""

from bulkops.worker import main

if __name__ == "__main__":
    main()
