"""One line naming the machine a benchmark ran on, for the top of every bench/ script's output.

Timings mean little without the CPU that gave them, and a CPU family alone is not enough: AMD's family 23 spans Zen 1
(256-bit AVX2 split into two 128-bit halves, one 256-bit FMA per cycle) and Zen 2 (two per cycle). Sessions 21-25
recorded their machine as "Zen 2" from the family; /proc/cpuinfo said family 23 model 1, a Zen 1 (Naples) EPYC.
So the line gives the vendor's model name, the family / model (or the ARM implementer / part) as the kernel reports
them, the microarchitecture where the table below knows the pair, the logical CPU count and the native ISA.

    python -m pyvideo.benchmarks.machine
"""
import os
import platform

# (vendor, family, model) -> microarchitecture: the processors earlier sessions ran on and their near relatives.
# A pair not listed is shown with its numbers alone, never guessed from the family.
X86_MICROARCHITECTURES = {
    ("AuthenticAMD", 23, 0x01): "Zen 1 (Naples / Summit Ridge)",
    ("AuthenticAMD", 23, 0x08): "Zen+ (Pinnacle Ridge)",
    ("AuthenticAMD", 23, 0x31): "Zen 2 (Rome)",
    ("AuthenticAMD", 23, 0x71): "Zen 2 (Matisse)",
    ("AuthenticAMD", 25, 0x01): "Zen 3 (Milan)",
    ("AuthenticAMD", 25, 0x21): "Zen 3 (Vermeer)",
    ("AuthenticAMD", 25, 0x11): "Zen 4 (Genoa)",
    ("AuthenticAMD", 25, 0x61): "Zen 4 (Raphael)",
    ("AuthenticAMD", 25, 0xA0): "Zen 4c (Bergamo)",
    ("AuthenticAMD", 26, 0x02): "Zen 5 (Turin)",
    ("GenuineIntel", 6, 0x3F): "Haswell-EP",
    ("GenuineIntel", 6, 0x4F): "Broadwell-EP",
    ("GenuineIntel", 6, 0x55): "Skylake-SP / Cascade Lake",
    ("GenuineIntel", 6, 0x5E): "Skylake client",
    ("GenuineIntel", 6, 0x9E): "Kaby / Coffee Lake",
    ("GenuineIntel", 6, 0x6A): "Ice Lake-SP",
    ("GenuineIntel", 6, 0x8F): "Sapphire Rapids",
    ("GenuineIntel", 6, 0xCF): "Emerald Rapids",
    ("GenuineIntel", 6, 0xAD): "Granite Rapids",
}
ARM_PARTS = {  # (implementer, part) from /proc/cpuinfo's "CPU implementer" / "CPU part"
    (0x41, 0xD03): "Cortex-A53",
    (0x41, 0xD05): "Cortex-A55",
    (0x41, 0xD08): "Cortex-A72",
    (0x41, 0xD0B): "Cortex-A76",
    (0x41, 0xD0C): "Neoverse N1",
    (0x41, 0xD40): "Neoverse V1",
    (0x41, 0xD49): "Neoverse N2",
    (0x41, 0xD4F): "Neoverse V2",
}


def _first_block(cpuinfo: str) -> dict:
    """The fields of the first processor's block (key: value lines up to the first blank line)."""
    fields = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def _int(text: str):
    try:
        return int(text, 0)
    except (TypeError, ValueError):
        return None


def describe_cpu(cpuinfo: str, logical_cpus=None) -> str:
    """The CPU line from a /proc/cpuinfo text (x86 or ARM); 'unknown CPU' where it names nothing."""
    f = _first_block(cpuinfo)
    parts = []
    if "vendor_id" in f:
        vendor, family, model = f["vendor_id"], _int(f.get("cpu family")), _int(f.get("model"))
        parts.append(f.get("model name", vendor))
        ids = f"{vendor} family {family} model {model}" + (f" (0x{model:x})" if model is not None else "")
        arch = X86_MICROARCHITECTURES.get((vendor, family, model))
        parts.append(ids + (f": {arch}" if arch else ": microarchitecture not in pyvideo.benchmarks.machine's table"))
    elif "CPU implementer" in f:
        implementer, part = _int(f["CPU implementer"]), _int(f.get("CPU part"))
        name = ARM_PARTS.get((implementer, part))
        ids = f"ARM implementer {f['CPU implementer']} part {f.get('CPU part', '?')}"
        parts.append(ids + (f": {name}" if name else ""))
    else:
        parts.append("unknown CPU")
    if logical_cpus:
        parts.append(f"{logical_cpus} logical CPUs")
    return ", ".join(parts)


def describe() -> str:
    """This machine: CPU line, then the native kernels' ISA where the extension is built."""
    try:
        with open("/proc/cpuinfo") as fh:
            cpuinfo = fh.read()
    except OSError:
        cpuinfo = ""
    line = describe_cpu(cpuinfo, os.cpu_count())
    if line.startswith("unknown CPU") and platform.processor():
        line = f"{platform.processor()} ({platform.machine()}), {os.cpu_count()} logical CPUs"
    try:
        from pyvideo import _native

        lib = _native.native()
        line += f"; native ISA {lib.get_isa()} (cpu features: {lib.cpu_features()})"
        l2 = int(_native.build_info().get("l2_cache_bytes", 0))
        line += f"; L2 {l2 // 1024} KB" if l2 else "; L2 unknown"
    except Exception as e:  # a benchmark without the extension still names its CPU
        line += f"; native extension not loaded ({type(e).__name__})"
    return "machine: " + line


if __name__ == "__main__":
    print(describe())
