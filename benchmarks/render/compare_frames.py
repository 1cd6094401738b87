"""Compares `gradless record`'s GIF frames with Gymnasium's own rgb_array renderer (pygame).

Run by hand, not by CI:

    python3 -m venv .venv && .venv/bin/pip install gymnasium==1.4.0 pygame pillow numpy
    gradless record checkpoints/cartpole-v1-ppo --device flex --out /tmp/videos
    .venv/bin/python benchmarks/render/compare_frames.py /tmp/videos

For every video listed in the folder's videos.jsonl it replays the episode in Gymnasium
(reset with the episode's seed, then its actions), renders every frame with
render_mode="rgb_array", decodes the GIF's frames, and reports per video and overall:
  - frames: both counts (they must agree: the episode's length + 1);
  - exact: the fraction of pixels with the same colour;
  - close: the fraction within 48 per channel (edges are anti-aliased differently);
  - foreground: of the pixels either image draws (not white), the fraction that are close.
Exits non-zero when a frame count or a start state differs.
"""

import json
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
from PIL import Image

CLOSE = 48


def gif_frames(path):
    image = Image.open(path)
    frames = []
    for k in range(image.n_frames):
        image.seek(k)
        frames.append(np.asarray(image.convert("RGB")))
    return frames


def gymnasium_frames(video):
    env = gym.make(video["env"], render_mode="rgb_array")
    env.reset(seed=video["seed"])
    start = np.asarray(env.unwrapped.state, dtype=np.float64)
    if not np.array_equal(start, np.asarray(video["init_state"])):
        raise SystemExit(f"{video['video']}: Gymnasium starts at {start}, gradless at {video['init_state']}")
    frames = [env.render()]
    for action in video["actions"]:
        if isinstance(action, list):
            action = np.asarray(action, dtype=np.float32)
        env.step(action)
        frames.append(env.render())
    env.close()
    return frames


def agreement(ours, theirs):
    difference = np.abs(ours.astype(np.int16) - theirs.astype(np.int16)).max(axis=2)
    drawn = (ours != 255).any(axis=2) | (theirs != 255).any(axis=2)
    close = difference <= CLOSE
    return {
        "pixels": int(difference.size),
        "exact": int((difference == 0).sum()),
        "close": int(close.sum()),
        "foreground": int(drawn.sum()),
        "foreground_close": int((close & drawn).sum()),
    }


def main():
    folder = Path(sys.argv[1])
    totals = {"pixels": 0, "exact": 0, "close": 0, "foreground": 0, "foreground_close": 0}
    failed = False
    for line in (folder / "videos.jsonl").read_text().splitlines():
        video = json.loads(line)
        ours = gif_frames(folder / video["video"])
        theirs = gymnasium_frames(video)
        if len(ours) != len(theirs) or len(ours) != video["length"] + 1:
            print(f"{video['video']}: {len(ours)} frames, Gymnasium renders {len(theirs)}")
            failed = True
            continue
        counts = {key: 0 for key in totals}
        for a, b in zip(ours, theirs):
            if a.shape != b.shape:
                raise SystemExit(f"{video['video']}: frames of {a.shape}, Gymnasium's {b.shape}")
            for key, value in agreement(a, b).items():
                counts[key] += value
        for key in totals:
            totals[key] += counts[key]
        print(json.dumps({
            "video": video["video"],
            "env": video["env"],
            "frames": len(ours),
            "exact": counts["exact"] / counts["pixels"],
            "close": counts["close"] / counts["pixels"],
            "foreground": counts["foreground_close"] / max(counts["foreground"], 1),
        }))
    print(json.dumps({
        "all_videos": True,
        "exact": totals["exact"] / max(totals["pixels"], 1),
        "close": totals["close"] / max(totals["pixels"], 1),
        "foreground": totals["foreground_close"] / max(totals["foreground"], 1),
    }))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
