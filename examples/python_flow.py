#!/usr/bin/python3
"""The main job through the Python package: the same flow as examples/flow.c.

    PYTHONPATH=bindings/python BCD_LIBRARY=build/lib/libbcd.so \\
        /usr/bin/python3 examples/python_flow.py DATA_DIR [EXAMPLES_DATA]

Two checks of one (synthetic) person, six angles each, stored in the local store under
DATA_DIR, analyzed with the model of BCD_MODEL (default: the built-in embedder) and
compared. Errors are reported with their stable code, as the C example does.
"""
import json
import os
import sys

import bcd

USER = "example-user"


def run_check(svc, examples, check):
    sid = svc.create_session()["session_id"]
    print("%s: session %s" % (check, sid))
    for angle in bcd.ANGLES:
        svc.add_image(sid, angle, os.path.join(examples, check, angle + ".jpg"))
    svc.complete_session(sid)
    print("analyze:", json.dumps(svc.analyze(sid)))
    return sid


def main(argv):
    if len(argv) not in (2, 3):
        print("usage: %s DATA_DIR [EXAMPLES_DATA]" % argv[0], file=sys.stderr)
        return 2
    data_dir = argv[1]
    examples = argv[2] if len(argv) > 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
    try:
        print("libbcd %s (binding %s)" % (bcd.library_version(), bcd.__version__))
        with bcd.open_store(data_dir, user=USER) as svc:
            first = run_check(svc, examples, "check1")
            second = run_check(svc, examples, "check2")
            result = svc.compare(second, first)
            print("compare:", json.dumps(result))
            data = result["data"]
            print("overall: %s (delta %.4f, stability %.4f, method %s)"
                  % (data["overall_trend"], data["overall_delta"], data["stability_index"],
                     data["comparison_method"]))
            for a in data["per_angle"]:
                print("  %-7s delta %+.4f  embedding distance %s"
                      % (a["angle_type"], a["delta"], "%.4f" % a["embedding_distance"]
                         if a["embedding_distance"] is not None else "-"))
    except bcd.LibraryError as e:
        print("python_flow: %s" % e, file=sys.stderr)
        return 1
    except bcd.Error as e:
        print("python_flow: %s (%s, %d): %s%s" % (e.code, e.status_name, e.status, e.message,
                                                 " " + json.dumps(e.details) if e.details else ""),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
