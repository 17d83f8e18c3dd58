"""`bulkops chaos`: a bounded, seeded soak that breaks its own stack on purpose and then checks the
books (Jepsen-style: a history of answers and reads, checked against invariants when the faults stop).

`faults` draws the schedule from the seed, `stack` runs the processes it breaks, `traffic` drives
the operations, `readers` watch them, `invariants` judge the outcome and `soak` ties it together.
"""
