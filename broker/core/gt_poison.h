/*  gt_poison.h — marking memory an allocator of the core holds but has not
    handed out (gt_slabs, gt_records), so that AddressSanitizer reports a
    record used after it was freed, before it was handed out, or past its
    end, as it does for malloc's blocks.

    GT_POISON (at, size) and GT_UNPOISON (at, size) do that under
    AddressSanitizer (gcc says so with __SANITIZE_ADDRESS__, clang with
    __has_feature) and nothing otherwise: the same code runs in every
    build.  AddressSanitizer works in 8-byte granules: a region that does
    not start on one poisons less than asked.  Not installed.  */
#ifndef GT_POISON_H_INCLUDED
#define GT_POISON_H_INCLUDED

#if defined (__SANITIZE_ADDRESS__)
#   define GT_POISON_ASAN   1
#elif defined (__has_feature)
#   if __has_feature (address_sanitizer)
#       define GT_POISON_ASAN   1
#   endif
#endif
#if defined (GT_POISON_ASAN)
#   include <sanitizer/asan_interface.h>
#   define GT_POISON(at, size)      ASAN_POISON_MEMORY_REGION ((at), (size))
#   define GT_UNPOISON(at, size)    ASAN_UNPOISON_MEMORY_REGION ((at), (size))
#else
#   define GT_POISON(at, size)      ((void) (at), (void) (size))
#   define GT_UNPOISON(at, size)    ((void) (at), (void) (size))
#endif

#endif
