#!/usr/bin/env bash
# Hostile flags and paths given to the apps: each must give one line naming the problem and a
# non-zero status before any training, never a crash, a wrap-around or an hour of wasted training.
# Also: --checkpoint then --resume give an uninterrupted run's bytes, kiln-predict reads the file,
# and kiln-images --preview writes a PNG of a batch.
# Usage: check_app_flags.sh BIN_DIR (where kiln-mnist, kiln-images, kiln-predict and kiln-export-images are).
set -uo pipefail
bin="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=0

# A tiny IDX data set: 2 training and 2 test images of 2x2, and one with 0 training images.
write_idx_set() {  # DIR IMAGE_COUNT_BYTE
  mkdir -p "$1"
  for split in train t10k; do
    count="$2"; [ "$split" = t10k ] && count='\x02'
    printf "\x00\x00\x08\x03\x00\x00\x00${count}\x00\x00\x00\x02\x00\x00\x00\x02" >"$1/$split-images-idx3-ubyte"
    printf "\x00\x00\x08\x01\x00\x00\x00${count}" >"$1/$split-labels-idx1-ubyte"
    if [ "$count" = '\x02' ]; then
      printf '\x00\x10\x20\x30\x40\x50\x60\x70' >>"$1/$split-images-idx3-ubyte"
      printf '\x01\x02' >>"$1/$split-labels-idx1-ubyte"
    fi
  done
}
write_idx_set "$work/tiny" '\x02'
write_idx_set "$work/empty" '\x00'
mkdir -p "$work/folder-for-file" && cp "$work"/tiny/* "$work/folder-for-file/" && rm "$work/folder-for-file/train-images-idx3-ubyte" && mkdir "$work/folder-for-file/train-images-idx3-ubyte"

# expect STATUS TEXT -- COMMAND...: the command exits with STATUS and its stderr contains TEXT,
# and (for failures) its stdout shows no epoch was trained.
expect() {
  local status="$1" text="$2"; shift 3
  "$@" >"$work/out" 2>"$work/err"
  local got=$?
  if [ "$got" != "$status" ] || ! grep -qF -- "$text" "$work/err" || { [ "$status" != 0 ] && grep -q "Epoch 1/" "$work/out"; }; then
    echo "FAILED: $* (status $got, expected $status and stderr with '$text')"
    sed 's/^/  stderr: /' "$work/err" | head -5
    failures=$((failures + 1))
  else
    echo "ok: $*"
  fi
}

mnist=("$bin/kiln-mnist" --data "$work/tiny" --seed 1)
expect 2 "--epochs must be from 1 to 1000000, got -1" -- "${mnist[@]}" --epochs -1
expect 2 "--epochs must be from 1 to 1000000, got 4294967297" -- "${mnist[@]}" --epochs 4294967297
expect 2 "--batch-size must be from 1 to 1048576, got 99999999999" -- "${mnist[@]}" --batch-size 99999999999
expect 2 "--threads must be from 1 to 1000000, got 0" -- "${mnist[@]}" --threads 0
expect 1 "the folder '$work/no/such' does not exist" -- "${mnist[@]}" --save "$work/no/such/model.npz"
expect 1 "--history-json '$work/tiny' is a folder" -- "${mnist[@]}" --history-json "$work/tiny"
expect 1 "an IDX set of 0 images" -- "$bin/kiln-mnist" --data "$work/empty"
expect 1 "it is a folder, not a file" -- "$bin/kiln-mnist" --data "$work/folder-for-file"
expect 0 "set_num_threads asked for 100000 threads; using" -- "${mnist[@]}" --epochs 1 --threads 100000
expect 2 "each from 1 to 4096, got '100000'" -- "$bin/kiln-images" --data "$work" --image-size 100000

expect 2 "--early-stopping must be from 0 to 1000000, got -1" -- "${mnist[@]}" --early-stopping -1
expect 1 "CSVLogger '$work/no/such/log.csv': the folder" -- "${mnist[@]}" --csv-log "$work/no/such/log.csv"

# The callbacks the flags ask for run: one CSV row per epoch trained, Keras's header first.
if "${mnist[@]}" --epochs 3 --csv-log "$work/log.csv" --early-stopping 5 >"$work/out" 2>"$work/err" &&
   [ "$(head -1 "$work/log.csv")" = "epoch,accuracy,input_wait,loss,val_accuracy,val_loss" ] &&
   [ "$(wc -l <"$work/log.csv")" = 4 ]; then
  echo "ok: --csv-log and --early-stopping"
else
  echo "FAILED: --csv-log and --early-stopping"; cat "$work/err" "$work/log.csv" 2>/dev/null | head -10
  failures=$((failures + 1))
fi

# --checkpoint and --resume: one epoch checkpointed, then resumed to two, ends with the bytes of
# an uninterrupted two-epoch run's weights.
expect 2 "--checkpoint needs a path ending in .kiln" -- "${mnist[@]}" --checkpoint "$work/ck.npz"
expect 1 "no-such.kiln" -- "${mnist[@]}" --resume "$work/no-such.kiln"
if "${mnist[@]}" --epochs 2 --save "$work/whole-run.npz" >"$work/out" 2>"$work/err" &&
   "${mnist[@]}" --epochs 1 --checkpoint "$work/ck.kiln" >"$work/out" 2>"$work/err" &&
   "${mnist[@]}" --epochs 2 --resume "$work/ck.kiln" --save "$work/resumed.npz" >"$work/out" 2>"$work/err" &&
   grep -q "Resumed from $work/ck.kiln after epoch 1" "$work/out" && grep -q "Epoch 2/2" "$work/out" && ! grep -q "Epoch 1/2" "$work/out" &&
   cmp -s "$work/whole-run.npz" "$work/resumed.npz"; then
  echo "ok: --checkpoint, then --resume, gives the uninterrupted run's weights"
else
  echo "FAILED: --checkpoint, then --resume"; cat "$work/out" "$work/err" | head -10
  failures=$((failures + 1))
fi

# --plot draws the curves of the epochs trained; a folder that does not exist is refused first.
expect 1 "the folder '$work/no/such' does not exist" -- "${mnist[@]}" --plot "$work/no/such/curves.svg"
if "${mnist[@]}" --epochs 2 --plot "$work/curves.svg" >"$work/out" 2>"$work/err" &&
   [ "$(grep -c '<title>loss, epoch' "$work/curves.svg")" = 2 ] && grep -q '</svg>' "$work/curves.svg"; then
  echo "ok: --plot"
else
  echo "FAILED: --plot"; cat "$work/out" "$work/err" | head -10
  failures=$((failures + 1))
fi

# kiln-images --preview draws the first training batch as a PNG and trains nothing. The image
# folder is the tiny IDX set written as PNGs: classes "Ankle boot" and "T-shirt_top", one 2x2
# image each. At --image-size 4 each image is scaled 16x to a 64-pixel tile: two tiles side by
# side are 4 + 2 * (64 + 4) = 140 wide, and 4 + 64 + 10 (the caption) + 4 = 82 high.
"$bin/kiln-export-images" --data "$work/tiny" --out "$work/png" --class-names "Zero,Ankle boot,T-shirt_top" >/dev/null 2>&1
rmdir "$work/png/train/Zero"  # no image has label 0, and an empty class folder is an error
images=("$bin/kiln-images" --data "$work/png/train" --image-size 4 --color-mode grayscale --validation-split 0 --seed 1)
png_header() {  # PATH: the PNG signature in hex, then the width and height from the IHDR chunk
  od -An -tx1 -N8 "$1" | tr -d ' \n'
  echo " $(od -An -tu1 -j16 -N4 "$1" | awk '{print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4}')x$(od -An -tu1 -j20 -N4 "$1" | awk '{print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4}')"
}
for augment in none flip,brightness,contrast; do
  rm -f "$work/preview.png"
  if "${images[@]}" --augment "$augment" --preview "$work/preview.png" >"$work/out" 2>"$work/err" &&
     [ "$(png_header "$work/preview.png")" = "89504e470d0a1a0a 140x82" ] &&
     grep -q "^Wrote the first training batch (2 of 2 images, 140x82 pixels) to $work/preview.png" "$work/out" &&
     ! grep -q "Epoch 1/" "$work/out"; then
    echo "ok: kiln-images --preview (--augment $augment)"
  else
    echo "FAILED: kiln-images --preview (--augment $augment): $(png_header "$work/preview.png" 2>/dev/null)"; cat "$work/out" "$work/err" | head -10
    failures=$((failures + 1))
  fi
done
expect 1 "'$work/no/such/preview.png': the folder '$work/no/such' does not exist" -- "${images[@]}" --preview "$work/no/such/preview.png"
mkdir "$work/folder.png"
expect 1 "--preview '$work/folder.png' is a folder" -- "${images[@]}" --preview "$work/folder.png"
expect 2 "--preview writes a PNG: the path must end in .png, got '$work/preview.jpg'" -- "${images[@]}" --preview "$work/preview.jpg"
[ ! -e "$work/no/such" ] && [ ! -e "$work/preview.jpg" ] || { echo "FAILED: a refused --preview left a file"; failures=$((failures + 1)); }

# --model picks the network: the convnet trains on images it fits, and names the layer and the
# image size when they are too small for its 3x3 windows.
expect 2 "--model must be dense or cnn, got 'resnet'" -- "${mnist[@]}" --model resnet
expect 1 "Conv2D 'conv2d': a 3x3 window with padding 'valid' does not fit a 2x2 image" -- "${mnist[@]}" --model cnn
if "${images[@]}" --image-size 12 --model cnn --epochs 1 >"$work/out" 2>"$work/err" &&
   grep -q "conv2d_1 (Conv2D)" "$work/out" && grep -q "^1/1 - .* - loss: " "$work/out"; then
  echo "ok: kiln-images --model cnn"
else
  echo "FAILED: kiln-images --model cnn"; cat "$work/out" "$work/err" | head -10
  failures=$((failures + 1))
fi

# kiln-predict runs a saved model over labelled data, and names a file that is not one.
if "$bin/kiln-predict" --model "$work/ck.kiln" --data "$work/tiny" >"$work/out" 2>"$work/err" &&
   grep -q "^Accuracy: [01]\.[0-9]* ([0-2] of 2)" "$work/out" && grep -q "^Confusion matrix" "$work/out"; then
  echo "ok: kiln-predict"
else
  echo "FAILED: kiln-predict"; cat "$work/out" "$work/err" | head -10
  failures=$((failures + 1))
fi
expect 1 "not a kiln model file" -- "$bin/kiln-predict" --model "$work/resumed.npz" --data "$work/tiny"
expect 1 "no-such.kiln" -- "$bin/kiln-predict" --model "$work/no-such.kiln" --data "$work/tiny"
expect 2 "no such folder" -- "$bin/kiln-predict" --model "$work/ck.kiln" --data "$work/no/such"

[ "$failures" = 0 ] || { echo "$failures failed"; exit 1; }
