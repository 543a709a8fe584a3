"""pyvideo.benchmarks.machine: the CPU line every bench/ script prints before its timings."""
from pyvideo.benchmarks import machine

ZEN1 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 23
model\t\t: 1
model name\t: AMD EPYC
flags\t\t: fpu avx2 fma

processor\t: 1
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: not the first processor
"""

ZEN2 = ZEN1.replace("model\t\t: 1\n", "model\t\t: 49\n", 1)

UNLISTED = ZEN1.replace("model\t\t: 1\n", "model\t\t: 250\n", 1)

NEOVERSE_N1 = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd asimddp
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1
"""


def test_family_23_model_1_is_zen_1_not_zen_2():
    line = machine.describe_cpu(ZEN1, 2)
    assert line == "AMD EPYC, AuthenticAMD family 23 model 1 (0x1): Zen 1 (Naples / Summit Ridge), 2 logical CPUs"
    assert "Zen 2 (Rome)" in machine.describe_cpu(ZEN2)  # model 0x31, same family


def test_only_the_first_processor_block_is_read():
    assert "GenuineIntel" not in machine.describe_cpu(ZEN1) and "not the first" not in machine.describe_cpu(ZEN1)


def test_unlisted_model_shows_numbers_without_a_guess():
    line = machine.describe_cpu(UNLISTED)
    assert "family 23 model 250 (0xfa)" in line and "Zen" not in line and "not in" in line


def test_arm_part_and_unknown_text():
    assert machine.describe_cpu(NEOVERSE_N1, 4) == "ARM implementer 0x41 part 0xd0c: Neoverse N1, 4 logical CPUs"
    assert machine.describe_cpu("") == "unknown CPU"
    assert machine.describe_cpu("garbage without fields\n\n") == "unknown CPU"


def test_this_machine():
    line = machine.describe()
    assert line.startswith("machine: ") and "native ISA" in line  # the extension is built for the test suite
    assert "; L2 " in line
