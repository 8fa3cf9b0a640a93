"""kill -9 in the middle of `sluice ingest`, then --resume: no file under a shard's name is ever
incomplete, no manifest exists before the end, and the resumed output equals an uninterrupted run's
byte for byte. Uses the real CLI on sample data it generates."""
import filecmp
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "formats"))
import interop_common as ic  # noqa: E402


def shards(d):
    return sorted(n for n in os.listdir(d) if n.startswith("train-") and "." not in n)


def main():
    args = ic.parse_args()
    if args.cli == "none":
        print("kill_resume_interop: skipped (no CLI)")
        return
    work = args.work
    subprocess.run(["rm", "-rf", work], check=True)
    os.makedirs(work)
    subprocess.run([args.cli, "sample-data", os.path.join(work, "data"), "--images", "1200",
                    "--datasets", "imagenet", "--size", "120x90"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    train = os.path.join(work, "data", "imagenet", "ILSVRC2012_img_train.tar")
    cmd = [args.cli, "ingest", "imagenet", "--train-archive", train, "--train-shards", "96",
           "--threads", "1"]
    ref = os.path.join(work, "ref")
    subprocess.run(cmd + ["--out", ref], check=True, stderr=subprocess.DEVNULL)

    out = os.path.join(work, "out")
    killed_with = None
    for attempt in range(20):  # kill as soon as some, but not all, shards are complete
        subprocess.run(["rm", "-rf", out], check=True)
        p = subprocess.Popen(cmd + ["--out", out], stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline and p.poll() is None:
            side = os.path.join(out, ".sluice")
            if os.path.isdir(side) and len(os.listdir(side)) >= 3 + attempt % 5:
                break
            time.sleep(0.0005)
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            killed_with = len(shards(out))
            if 0 < killed_with < 96:
                break
    if not killed_with or killed_with >= 96:
        print("FAIL: could not interrupt the run mid-way")
        sys.exit(1)
    if os.path.exists(os.path.join(out, "manifest.json")):
        print("FAIL: manifest.json exists after kill -9")
        sys.exit(1)
    # Every file under a shard name must be complete: identical to the reference shard.
    for name in shards(out):
        if not filecmp.cmp(os.path.join(out, name), os.path.join(ref, name), shallow=False):
            print(f"FAIL: {name} exists but differs from the uninterrupted run")
            sys.exit(1)
    r = subprocess.run(cmd + ["--out", out, "--resume"], check=True, capture_output=True, text=True)
    if "resuming" not in r.stderr:
        print("FAIL: --resume did not report kept shards:", r.stderr)
        sys.exit(1)
    if shards(out) != shards(ref):
        print("FAIL: shard sets differ after resume")
        sys.exit(1)
    for name in shards(ref):
        if not filecmp.cmp(os.path.join(out, name), os.path.join(ref, name), shallow=False):
            print(f"FAIL: {name} differs after resume")
            sys.exit(1)
    if not os.path.exists(os.path.join(out, "manifest.json")):
        print("FAIL: no manifest after resume")
        sys.exit(1)
    leftovers = [n for n in os.listdir(out) if n.endswith(".tmp")]
    if leftovers:
        print("FAIL: temporary files left after the resumed run:", leftovers)
        sys.exit(1)
    print(f"kill_resume_interop: killed with {killed_with}/96 shards complete, "
          f"resumed to 96 identical shards, no temporary files left")


if __name__ == "__main__":
    main()
