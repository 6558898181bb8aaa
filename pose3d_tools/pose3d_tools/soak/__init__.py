"""`make soak`: the ROS graph under 4 x 30 Hz for minutes, with faults injected and checked.

`runner.py` starts and watches the processes, `faults.py` injects and checks each fault,
`report.py` turns the samples into out/soak/report.json (+ plot), `reliability_doc.py` renders
docs/reliability.md from that report.
"""
