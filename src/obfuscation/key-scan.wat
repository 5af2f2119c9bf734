;; The getStats key pre-check of frame-obfuscator.ts without a JS string: the first position of
;; any of `"134"`, `"141"`, `"ip"`, `ddress"` (exactly what STATS_KEYS_PLAIN matches) in the
;; frame bytes the caller copied to memory[0, len); without one, -2 if the frame holds a
;; backslash (0x5c), else -1. Assembled by scripts/assemble-wasm.mjs.
;;
;; Per 16-byte block, a SIMD filter compares unaligned loads at p, p+1, p+2, p+3, p+4 and p+6
;; against the needles' bytes (all bytes of the quoted numeric keys, which compressed stats are
;; full of: `"1xx"` keys must not reach the scalar check), then each candidate, in order, gets an
;; exact scalar compare, so the first verified one is the first match. scan() zeroes the 32 bytes
;; after the frame first: no needle holds a zero byte, so loads past the end never match, and
;; every load stays below len + 32, which the caller guarantees is inside memory.
(module
  (memory (export "memory") 1)
  (func (export "scan") (param $len i32) (result i32)
    (local $i i32) (local $p i32) (local $mask i32) (local $x i64)
    (local $l0 v128) (local $l1 v128) (local $l2 v128) (local $l3 v128) (local $q0 v128) (local $cand v128)
    (local $backslashes v128)
    ;; The needles' bytes, splatted once.
    (local $quote v128) (local $one v128) (local $three v128) (local $four v128)
    (local $i_ v128) (local $p_ v128) (local $d_ v128) (local $r_ v128) (local $backslash v128)
    (v128.store (local.get $len) (v128.const i64x2 0 0))
    (v128.store offset=16 (local.get $len) (v128.const i64x2 0 0))
    (local.set $quote (i8x16.splat (i32.const 0x22)))
    (local.set $one (i8x16.splat (i32.const 0x31)))
    (local.set $three (i8x16.splat (i32.const 0x33)))
    (local.set $four (i8x16.splat (i32.const 0x34)))
    (local.set $i_ (i8x16.splat (i32.const 0x69)))
    (local.set $p_ (i8x16.splat (i32.const 0x70)))
    (local.set $d_ (i8x16.splat (i32.const 0x64)))
    (local.set $r_ (i8x16.splat (i32.const 0x72)))
    (local.set $backslash (i8x16.splat (i32.const 0x5c)))
    (block $none
      (loop $blocks
        (br_if $none (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $l0 (v128.load (local.get $i)))
        (local.set $l1 (v128.load offset=1 (local.get $i)))
        (local.set $l2 (v128.load offset=2 (local.get $i)))
        (local.set $l3 (v128.load offset=3 (local.get $i)))
        (local.set $q0 (i8x16.eq (local.get $l0) (local.get $quote)))
        (local.set $backslashes (v128.or (local.get $backslashes) (i8x16.eq (local.get $l0) (local.get $backslash))))
        (local.set $cand
          (v128.or
            (v128.or
              ;; "134" and "141"
              (v128.and
                (v128.and (local.get $q0) (i8x16.eq (local.get $l1) (local.get $one)))
                (v128.and
                  (i8x16.eq (v128.load offset=4 (local.get $i)) (local.get $quote))
                  (v128.or
                    (v128.and (i8x16.eq (local.get $l2) (local.get $three))
                              (i8x16.eq (local.get $l3) (local.get $four)))
                    (v128.and (i8x16.eq (local.get $l2) (local.get $four))
                              (i8x16.eq (local.get $l3) (local.get $one))))))
              ;; "ip"
              (v128.and
                (v128.and (local.get $q0) (i8x16.eq (local.get $l1) (local.get $i_)))
                (v128.and (i8x16.eq (local.get $l2) (local.get $p_))
                          (i8x16.eq (local.get $l3) (local.get $quote)))))
            ;; ddress"
            (v128.and
              (v128.and (i8x16.eq (local.get $l0) (local.get $d_))
                        (i8x16.eq (local.get $l1) (local.get $d_)))
              (v128.and (i8x16.eq (local.get $l2) (local.get $r_))
                        (i8x16.eq (v128.load offset=6 (local.get $i)) (local.get $quote))))))
        (if (v128.any_true (local.get $cand))
          (then
            (local.set $mask (i8x16.bitmask (local.get $cand)))
            (loop $candidates
              (local.set $p (i32.add (local.get $i) (i32.ctz (local.get $mask))))
              (local.set $x (i64.load (local.get $p)))
              ;; Little-endian: the needle's first byte is the lowest.
              (if (i32.or
                    (i32.or
                      (i64.eq (i64.and (local.get $x) (i64.const 0xffffffffff)) (i64.const 0x2234333122))
                      (i64.eq (i64.and (local.get $x) (i64.const 0xffffffffff)) (i64.const 0x2231343122)))
                    (i32.or
                      (i64.eq (i64.and (local.get $x) (i64.const 0xffffffff)) (i64.const 0x22706922))
                      (i64.eq (i64.and (local.get $x) (i64.const 0xffffffffffffff)) (i64.const 0x22737365726464))))
                (then (return (local.get $p))))
              (local.set $mask (i32.and (local.get $mask) (i32.sub (local.get $mask) (i32.const 1))))
              (br_if $candidates (local.get $mask)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $blocks)))
    (select (i32.const -2) (i32.const -1) (v128.any_true (local.get $backslashes)))))
