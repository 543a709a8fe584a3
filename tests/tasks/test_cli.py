"""The command line end to end on a tiny synthetic dataset, and the offline message of --pretrained."""
import re
import urllib.error

import pytest
import torch

from pyvideo.cli import main


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli") / "data"
    assert main(["synth", str(root), "--num-classes", "2", "--videos-per-class", "4", "--size", "32"]) == 0
    return root


def test_train_eval_classify(data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(data_dir), "--out", str(run), "--epochs", "2", "--batch-size", "2",
                 "--checkpoint-every", "3"]) == 0
    assert (run / "model.pt").is_file() and (run / "log.csv").is_file()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["checkpoint_00000003.pt", "checkpoint_00000006.pt"]
    png = tmp_path / "cm.png"
    assert main(["eval", str(data_dir), "--checkpoint", str(run / "model.pt"), "--clips", "2", "--confusion",
                 str(png)]) == 0
    out = capsys.readouterr().out
    match = re.search(r"2 videos, 2 clip\(s\) x 3 crop\(s\): top-1 ([\d.]+)%", out)
    assert match and float(match.group(1)) in (0.0, 50.0, 100.0)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    video = data_dir / "move_left" / "move_left_0003.mp4"
    assert main(["classify", str(video), "--checkpoint", str(run / "model.pt")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and {line.split()[1] for line in lines[1:]} == {"move_right", "move_left"}
    assert sum(float(line.split()[2]) for line in lines[1:]) == pytest.approx(1.0, abs=1e-3)


def test_resume_continues_a_cli_run(data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    common = [str(data_dir), "--out", str(run), "--batch-size", "2", "--checkpoint-every", "3"]
    assert main(["train", *common, "--epochs", "1"]) == 0
    assert main(["train", *common, "--epochs", "2", "--resume"]) == 0
    assert "trained 6 steps" in capsys.readouterr().out


def test_classify_with_a_kinetics_checkpoint_prints_kinetics_names(data_dir, tmp_path, capsys):
    from pyvideo.models.hub import x3d_xs

    torch.manual_seed(0)
    path = tmp_path / "X3D_XS.pyth"
    torch.save({"model_state": x3d_xs().state_dict()}, path)
    video = data_dir / "move_up" / "move_up_0000.mp4" if (data_dir / "move_up").exists() else next(data_dir.glob("*/*.mp4"))
    assert main(["classify", str(video), "--model", "x3d_xs", "--checkpoint", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    from pyvideo.tasks.recipes import kinetics_class_names

    names = kinetics_class_names()
    assert len(names) == 400 and names[0] == "abseiling"
    assert len(lines) == 6 and all(line.split(". ", 1)[1].rsplit(" ", 1)[0].strip() in names for line in lines[1:])


def test_pretrained_without_network_says_so(data_dir, tmp_path, monkeypatch, capsys):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache: the file must be downloaded
    monkeypatch.setattr(torch.hub, "urlopen", offline)
    video = next(data_dir.glob("*/*.mp4"))
    assert main(["classify", str(video), "--pretrained", "--model", "x3d_xs"]) == 2
    err = capsys.readouterr().err
    assert "cannot get the Kinetics-400 x3d_xs checkpoint from https://dl.fbaipublicfiles.com" in err
    assert "this machine cannot reach it" in err and "--checkpoint PATH" in err


def test_classify_argument_errors(data_dir, capsys):
    video = next(data_dir.glob("*/*.mp4"))
    assert main(["classify", str(video)]) == 2
    assert "give --checkpoint PATH" in capsys.readouterr().err
    assert main(["classify", str(data_dir / "missing.mp4"), "--pretrained"]) == 2
    assert "video not found" in capsys.readouterr().err
    assert main(["classify", str(video), "--pretrained", "--model", "small_x3d"]) == 2
    assert "no Kinetics-400 checkpoint" in capsys.readouterr().err


def test_demo_pipeline_on_a_tiny_budget(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--num-classes", "2", "--videos-per-class", "12", "--epochs", "1",
                 "--threads", "1"]) == 0
    out = capsys.readouterr().out
    for step in ("1/6 synthesised 24 MP4 videos with the native encoder", "3/6 training small_x3d", "5/6 converted", "6/6 quantized"):
        assert step in out
    rows = [line for line in out.splitlines() if line.startswith(("eager fp32", "deploy fp32", "deploy int8"))]
    assert len(rows) == 3
    assert "int8 kernels: " in out
    assert (tmp_path / "confusion_matrix.png").is_file() and (tmp_path / "run" / "model.pt").is_file()
    assert (tmp_path / "run" / "model_int8.pvp").stat().st_size > 1000  # the int8 model file the demo ran


def test_demo_int8_note_names_cpus_without_a_byte_dot():
    from pyvideo._native import int8_kernel_note

    for variant in ("avx2", "avx512", "neon", "scalar"):  # avx512: AVX-512 without VNNI
        note = int8_kernel_note(variant)
        assert "without a byte dot-product instruction" in note and variant in note
    for variant in ("avx512vnni", "avxvnni", "amx+avx512vnni", "neondot"):
        assert int8_kernel_note(variant) == f"int8 kernels: {variant} (byte dot products)"
