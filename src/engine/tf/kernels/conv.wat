;; Convolution and BatchNorm kernels with WebAssembly SIMD, for the ResNet of src/engine/families/resnet:
;;   im2col        the patches of a k x k convolution (k 1 or 3) as the rows of a matrix, zeros for the padding;
;;   col2im        its adjoint: each input pixel gathers the patch entries that read it (no scattered writes);
;;   flip_filter   a filter turned half a turn with its in and out channels swapped (dx of a stride-1 convolution);
;;   bn_stats      per-channel mean and (biased) variance of a [rows, c] matrix, two passes as tf.moments;
;;   bn_apply      y = (x - mean) * scale + shift per channel (BatchNorm forward, training or evaluation);
;;   bn_grad_sums  per-channel sums of dy and of dy * (x - mean) * rstd (dbeta and dgamma);
;;   bn_grad_apply dx = dy * a + (x - mean) * b + c per channel (the input gradient through the batch statistics).
;; Tensors are NHWC float32 at byte offsets into the imported memory. The channel loops run four lanes at a time
;; and finish with single floats, so any channel count works; the BatchNorm kernels take c a multiple of 4.
;; Built into convWasm.ts by scripts/build-kernels.mjs (wabt).
(module
  (import "env" "memory" (memory 1))

  ;; n floats from src to dst.
  (func $copy (param $src i32) (param $dst i32) (param $n i32)
    (local $o i32) (local $end4 i32) (local $end i32)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $end4 (i32.and (local.get $end) (i32.const -16)))
    (local.set $o (i32.const 0))
    (block $done4 (loop $v
      (br_if $done4 (i32.ge_u (local.get $o) (local.get $end4)))
      (v128.store (i32.add (local.get $dst) (local.get $o)) (v128.load (i32.add (local.get $src) (local.get $o))))
      (local.set $o (i32.add (local.get $o) (i32.const 16)))
      (br $v)))
    (block $done (loop $s
      (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
      (f32.store (i32.add (local.get $dst) (local.get $o)) (f32.load (i32.add (local.get $src) (local.get $o))))
      (local.set $o (i32.add (local.get $o) (i32.const 4)))
      (br $s))))

  ;; n zeros at dst.
  (func $zero (param $dst i32) (param $n i32)
    (local $o i32) (local $end4 i32) (local $end i32)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $end4 (i32.and (local.get $end) (i32.const -16)))
    (local.set $o (i32.const 0))
    (block $done4 (loop $v
      (br_if $done4 (i32.ge_u (local.get $o) (local.get $end4)))
      (v128.store (i32.add (local.get $dst) (local.get $o)) (v128.const f32x4 0 0 0 0))
      (local.set $o (i32.add (local.get $o) (i32.const 16)))
      (br $v)))
    (block $done (loop $s
      (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
      (f32.store (i32.add (local.get $dst) (local.get $o)) (f32.const 0))
      (local.set $o (i32.add (local.get $o) (i32.const 4)))
      (br $s))))

  ;; dst += src, n floats.
  (func $add_into (param $src i32) (param $dst i32) (param $n i32)
    (local $o i32) (local $end4 i32) (local $end i32) (local $p i32)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $end4 (i32.and (local.get $end) (i32.const -16)))
    (local.set $o (i32.const 0))
    (block $done4 (loop $v
      (br_if $done4 (i32.ge_u (local.get $o) (local.get $end4)))
      (local.set $p (i32.add (local.get $dst) (local.get $o)))
      (v128.store (local.get $p) (f32x4.add (v128.load (local.get $p)) (v128.load (i32.add (local.get $src) (local.get $o)))))
      (local.set $o (i32.add (local.get $o) (i32.const 16)))
      (br $v)))
    (block $done (loop $s
      (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
      (local.set $p (i32.add (local.get $dst) (local.get $o)))
      (f32.store (local.get $p) (f32.add (f32.load (local.get $p)) (f32.load (i32.add (local.get $src) (local.get $o)))))
      (local.set $o (i32.add (local.get $o) (i32.const 4)))
      (br $s))))

  ;; cols[(b, oy, ox), (ky, kx, ch)] = x[b, oy * s + ky - pad, ox * s + kx - pad, ch] (0 outside), for x
  ;; [batch, h, w, c] and cols [batch * ho * wo, k * k * c]: the rows of the patch matrix of a k x k convolution.
  (func (export "im2col")
    (param $x i32) (param $cols i32) (param $batch i32) (param $h i32) (param $w i32) (param $c i32)
    (param $k i32) (param $s i32) (param $pad i32) (param $ho i32) (param $wo i32)
    (local $b i32) (local $oy i32) (local $ox i32) (local $ky i32) (local $kx i32) (local $iy i32) (local $ix i32)
    (local $dst i32) (local $cBytes i32) (local $img i32)
    (local.set $cBytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $dst (local.get $cols))
    (local.set $b (i32.const 0))
    (block $doneB (loop $loopB
      (br_if $doneB (i32.ge_u (local.get $b) (local.get $batch)))
      (local.set $img (i32.add (local.get $x) (i32.mul (i32.mul (local.get $b) (i32.mul (local.get $h) (local.get $w))) (local.get $cBytes))))
      (local.set $oy (i32.const 0))
      (block $doneY (loop $loopY
        (br_if $doneY (i32.ge_u (local.get $oy) (local.get $ho)))
        (local.set $ox (i32.const 0))
        (block $doneX (loop $loopX
          (br_if $doneX (i32.ge_u (local.get $ox) (local.get $wo)))
          (local.set $ky (i32.const 0))
          (block $doneKy (loop $loopKy
            (br_if $doneKy (i32.ge_u (local.get $ky) (local.get $k)))
            (local.set $iy (i32.sub (i32.add (i32.mul (local.get $oy) (local.get $s)) (local.get $ky)) (local.get $pad)))
            (local.set $kx (i32.const 0))
            (block $doneKx (loop $loopKx
              (br_if $doneKx (i32.ge_u (local.get $kx) (local.get $k)))
              (local.set $ix (i32.sub (i32.add (i32.mul (local.get $ox) (local.get $s)) (local.get $kx)) (local.get $pad)))
              ;; unsigned comparisons: a negative coordinate is a huge unsigned one
              (if (i32.and (i32.lt_u (local.get $iy) (local.get $h)) (i32.lt_u (local.get $ix) (local.get $w)))
                (then (call $copy
                  (i32.add (local.get $img) (i32.mul (i32.add (i32.mul (local.get $iy) (local.get $w)) (local.get $ix)) (local.get $cBytes)))
                  (local.get $dst) (local.get $c)))
                (else (call $zero (local.get $dst) (local.get $c))))
              (local.set $dst (i32.add (local.get $dst) (local.get $cBytes)))
              (local.set $kx (i32.add (local.get $kx) (i32.const 1)))
              (br $loopKx)))
            (local.set $ky (i32.add (local.get $ky) (i32.const 1)))
            (br $loopKy)))
          (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
          (br $loopX)))
        (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
        (br $loopY)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $loopB))))

  ;; The adjoint of im2col: dx[b, iy, ix, ch] = the sum, over the patch entries (ky, kx) that read that pixel
  ;; (iy + pad - ky = oy * s and ix + pad - kx = ox * s inside the output), of dcols[(b, oy, ox), (ky, kx, ch)],
  ;; in the order ky, kx. Each pixel is written once, so no write scatters.
  (func (export "col2im")
    (param $dcols i32) (param $dx i32) (param $batch i32) (param $h i32) (param $w i32) (param $c i32)
    (param $k i32) (param $s i32) (param $pad i32) (param $ho i32) (param $wo i32)
    (local $b i32) (local $iy i32) (local $ix i32) (local $ky i32) (local $kx i32) (local $ty i32) (local $tx i32)
    (local $oy i32) (local $ox i32) (local $dst i32) (local $cBytes i32) (local $rowBytes i32) (local $img i32)
    (local.set $cBytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $rowBytes (i32.mul (i32.mul (local.get $k) (local.get $k)) (local.get $cBytes)))
    (local.set $dst (local.get $dx))
    (local.set $b (i32.const 0))
    (block $doneB (loop $loopB
      (br_if $doneB (i32.ge_u (local.get $b) (local.get $batch)))
      ;; the first row of this image's patches
      (local.set $img (i32.add (local.get $dcols) (i32.mul (i32.mul (local.get $b) (i32.mul (local.get $ho) (local.get $wo))) (local.get $rowBytes))))
      (local.set $iy (i32.const 0))
      (block $doneY (loop $loopY
        (br_if $doneY (i32.ge_u (local.get $iy) (local.get $h)))
        (local.set $ix (i32.const 0))
        (block $doneX (loop $loopX
          (br_if $doneX (i32.ge_u (local.get $ix) (local.get $w)))
          (call $zero (local.get $dst) (local.get $c))
          (local.set $ky (i32.const 0))
          (block $doneKy (loop $loopKy
            (br_if $doneKy (i32.ge_u (local.get $ky) (local.get $k)))
            (local.set $ty (i32.sub (i32.add (local.get $iy) (local.get $pad)) (local.get $ky)))
            (local.set $oy (i32.div_s (local.get $ty) (local.get $s)))
            (if (i32.and
                  (i32.and (i32.ge_s (local.get $ty) (i32.const 0)) (i32.eqz (i32.rem_s (local.get $ty) (local.get $s))))
                  (i32.lt_s (local.get $oy) (local.get $ho)))
              (then
                (local.set $kx (i32.const 0))
                (block $doneKx (loop $loopKx
                  (br_if $doneKx (i32.ge_u (local.get $kx) (local.get $k)))
                  (local.set $tx (i32.sub (i32.add (local.get $ix) (local.get $pad)) (local.get $kx)))
                  (local.set $ox (i32.div_s (local.get $tx) (local.get $s)))
                  (if (i32.and
                        (i32.and (i32.ge_s (local.get $tx) (i32.const 0)) (i32.eqz (i32.rem_s (local.get $tx) (local.get $s))))
                        (i32.lt_s (local.get $ox) (local.get $wo)))
                    (then (call $add_into
                      (i32.add (i32.add (local.get $img) (i32.mul (i32.add (i32.mul (local.get $oy) (local.get $wo)) (local.get $ox)) (local.get $rowBytes)))
                        (i32.mul (i32.add (i32.mul (local.get $ky) (local.get $k)) (local.get $kx)) (local.get $cBytes)))
                      (local.get $dst) (local.get $c))))
                  (local.set $kx (i32.add (local.get $kx) (i32.const 1)))
                  (br $loopKx)))))
            (local.set $ky (i32.add (local.get $ky) (i32.const 1)))
            (br $loopKy)))
          (local.set $dst (i32.add (local.get $dst) (local.get $cBytes)))
          (local.set $ix (i32.add (local.get $ix) (i32.const 1)))
          (br $loopX)))
        (local.set $iy (i32.add (local.get $iy) (i32.const 1)))
        (br $loopY)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $loopB))))

;; out[ky, kx, o, i] = w[k - 1 - ky, k - 1 - kx, i, o] for w [k, k, cin, cout]: the filter whose convolution
  ;; of dy (stride 1, "same" padding) is dx. One element at a time (a filter is small).
  (func (export "flip_filter") (param $w i32) (param $out i32) (param $k i32) (param $cin i32) (param $cout i32)
    (local $p i32) (local $kk i32) (local $o i32) (local $i i32) (local $src i32) (local $dst i32)
    (local.set $kk (i32.mul (local.get $k) (local.get $k)))
    (local.set $dst (local.get $out))
    (local.set $p (i32.const 0))
    (block $doneP (loop $loopP
      (br_if $doneP (i32.ge_u (local.get $p) (local.get $kk)))
      ;; position p = ky * k + kx reads position kk - 1 - p (both axes reversed)
      (local.set $src (i32.add (local.get $w)
        (i32.shl (i32.mul (i32.sub (i32.sub (local.get $kk) (i32.const 1)) (local.get $p)) (i32.mul (local.get $cin) (local.get $cout))) (i32.const 2))))
      (local.set $o (i32.const 0))
      (block $doneO (loop $loopO
        (br_if $doneO (i32.ge_u (local.get $o) (local.get $cout)))
        (local.set $i (i32.const 0))
        (block $doneI (loop $loopI
          (br_if $doneI (i32.ge_u (local.get $i) (local.get $cin)))
          (f32.store (local.get $dst)
            (f32.load (i32.add (local.get $src) (i32.shl (i32.add (i32.mul (local.get $i) (local.get $cout)) (local.get $o)) (i32.const 2)))))
          (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $loopI)))
        (local.set $o (i32.add (local.get $o) (i32.const 1)))
        (br $loopO)))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $loopP)))
  )

  ;; mean[ch] and var[ch] (biased) over the rows of x [rows, c]: the mean first, then the mean of the squared
  ;; deviations (tf.moments' two passes). c is a multiple of 4.
  (func (export "bn_stats") (param $x i32) (param $mean i32) (param $var i32) (param $rows i32) (param $c i32)
    (local $i i32) (local $o i32) (local $rowBytes i32) (local $xr i32) (local $inv v128) (local $d v128) (local $p i32)
    (local.set $rowBytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $inv (f32x4.splat (f32.div (f32.const 1) (f32.convert_i32_u (local.get $rows)))))
    (call $zero (local.get $mean) (local.get $c))
    (call $zero (local.get $var) (local.get $c))
    (local.set $xr (local.get $x))
    (local.set $i (i32.const 0))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $i) (local.get $rows)))
      (call $add_into (local.get $xr) (local.get $mean) (local.get $c))
      (local.set $xr (i32.add (local.get $xr) (local.get $rowBytes)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $row)))
    (local.set $o (i32.const 0))
    (loop $scale
      (local.set $p (i32.add (local.get $mean) (local.get $o)))
      (v128.store (local.get $p) (f32x4.mul (v128.load (local.get $p)) (local.get $inv)))
      (local.set $o (i32.add (local.get $o) (i32.const 16)))
      (br_if $scale (i32.lt_u (local.get $o) (local.get $rowBytes))))
    (local.set $xr (local.get $x))
    (local.set $i (i32.const 0))
    (block $done2 (loop $row2
      (br_if $done2 (i32.ge_u (local.get $i) (local.get $rows)))
      (local.set $o (i32.const 0))
      (loop $col
        (local.set $d (f32x4.sub (v128.load (i32.add (local.get $xr) (local.get $o))) (v128.load (i32.add (local.get $mean) (local.get $o)))))
        (local.set $p (i32.add (local.get $var) (local.get $o)))
        (v128.store (local.get $p) (f32x4.add (v128.load (local.get $p)) (f32x4.mul (local.get $d) (local.get $d))))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (br_if $col (i32.lt_u (local.get $o) (local.get $rowBytes))))
      (local.set $xr (i32.add (local.get $xr) (local.get $rowBytes)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $row2)))
    (local.set $o (i32.const 0))
    (loop $scale2
      (local.set $p (i32.add (local.get $var) (local.get $o)))
      (v128.store (local.get $p) (f32x4.mul (v128.load (local.get $p)) (local.get $inv)))
      (local.set $o (i32.add (local.get $o) (i32.const 16)))
      (br_if $scale2 (i32.lt_u (local.get $o) (local.get $rowBytes)))))

  ;; y = (x - mean) * scale + shift, per channel, x and y [rows, c]. c is a multiple of 4.
  (func (export "bn_apply") (param $x i32) (param $mean i32) (param $scale i32) (param $shift i32) (param $y i32) (param $rows i32) (param $c i32)
    (local $i i32) (local $o i32) (local $rowBytes i32) (local $off i32)
    (local.set $rowBytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $i (i32.const 0))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $i) (local.get $rows)))
      (local.set $o (i32.const 0))
      (loop $col
        (local.set $off (i32.add (i32.mul (local.get $i) (local.get $rowBytes)) (local.get $o)))
        (v128.store (i32.add (local.get $y) (local.get $off))
          (f32x4.add
            (f32x4.mul (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $off))) (v128.load (i32.add (local.get $mean) (local.get $o))))
              (v128.load (i32.add (local.get $scale) (local.get $o))))
            (v128.load (i32.add (local.get $shift) (local.get $o)))))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (br_if $col (i32.lt_u (local.get $o) (local.get $rowBytes))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $row))))

  ;; sdy[ch] = sum of dy, sdyx[ch] = sum of dy * (x - mean) * rstd, over the rows. c is a multiple of 4.
  (func (export "bn_grad_sums") (param $x i32) (param $dy i32) (param $mean i32) (param $rstd i32) (param $sdy i32) (param $sdyx i32) (param $rows i32) (param $c i32)
    (local $i i32) (local $o i32) (local $rowBytes i32) (local $off i32) (local $dyv v128) (local $p i32)
    (local.set $rowBytes (i32.shl (local.get $c) (i32.const 2)))
    (call $zero (local.get $sdy) (local.get $c))
    (call $zero (local.get $sdyx) (local.get $c))
    (local.set $i (i32.const 0))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $i) (local.get $rows)))
      (local.set $o (i32.const 0))
      (loop $col
        (local.set $off (i32.add (i32.mul (local.get $i) (local.get $rowBytes)) (local.get $o)))
        (local.set $dyv (v128.load (i32.add (local.get $dy) (local.get $off))))
        (local.set $p (i32.add (local.get $sdy) (local.get $o)))
        (v128.store (local.get $p) (f32x4.add (v128.load (local.get $p)) (local.get $dyv)))
        (local.set $p (i32.add (local.get $sdyx) (local.get $o)))
        (v128.store (local.get $p) (f32x4.add (v128.load (local.get $p))
          (f32x4.mul (local.get $dyv)
            (f32x4.mul (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $off))) (v128.load (i32.add (local.get $mean) (local.get $o))))
              (v128.load (i32.add (local.get $rstd) (local.get $o)))))))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (br_if $col (i32.lt_u (local.get $o) (local.get $rowBytes))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $row))))

  ;; dx = dy * a + (x - mean) * b + cc, per channel. c is a multiple of 4.
  (func (export "bn_grad_apply") (param $dy i32) (param $x i32) (param $mean i32) (param $a i32) (param $b i32) (param $cc i32) (param $dx i32) (param $rows i32) (param $c i32)
    (local $i i32) (local $o i32) (local $rowBytes i32) (local $off i32)
    (local.set $rowBytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $i (i32.const 0))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $i) (local.get $rows)))
      (local.set $o (i32.const 0))
      (loop $col
        (local.set $off (i32.add (i32.mul (local.get $i) (local.get $rowBytes)) (local.get $o)))
        (v128.store (i32.add (local.get $dx) (local.get $off))
          (f32x4.add
            (f32x4.add
              (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $off))) (v128.load (i32.add (local.get $a) (local.get $o))))
              (f32x4.mul (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $off))) (v128.load (i32.add (local.get $mean) (local.get $o))))
                (v128.load (i32.add (local.get $b) (local.get $o)))))
            (v128.load (i32.add (local.get $cc) (local.get $o)))))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (br_if $col (i32.lt_u (local.get $o) (local.get $rowBytes))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $row))))
)
