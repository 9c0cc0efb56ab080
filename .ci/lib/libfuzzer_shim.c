/* Lets atheris run with gcc's AddressSanitizer runtime preloaded (.ci/fuzz).
 *
 * gcc's libasan.so must be preloaded into CPython for the sanitized kernel,
 * but it also exports no-op (weak) __sanitizer_cov_* functions. Preloaded,
 * they win the symbol lookup over the libFuzzer copy linked into atheris, so
 * atheris' Python coverage goes nowhere ("Coverage symbols are being provided
 * by a library other than libFuzzer") and the fuzzer runs blind.
 *
 * This shim is preloaded before libasan. It exports exactly the libFuzzer
 * entry points that atheris' core_without_libfuzzer module imports, so
 * atheris takes the "preloaded libFuzzer" path, and forwards each call (a
 * tail call, so libFuzzer still sees the original caller's PC) to the
 * libFuzzer inside atheris' core_with_libfuzzer module, which it loads
 * privately (RTLD_LOCAL: its C++ symbols do not clash with the module
 * atheris imports). The path of that module comes from CHURN_LIBFUZZER_SO.
 *
 * Build: gcc -O2 -shared -fPIC -o libfuzzer_shim.so libfuzzer_shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void *resolve(const char *name) {
    static void *handle;
    if (handle == NULL) {
        const char *path = getenv("CHURN_LIBFUZZER_SO");
        if (path == NULL) {
            fprintf(stderr, "libfuzzer_shim: set CHURN_LIBFUZZER_SO\n");
            abort();
        }
        handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (handle == NULL) {
            fprintf(stderr, "libfuzzer_shim: %s\n", dlerror());
            abort();
        }
    }
    void *fn = dlsym(handle, name);
    if (fn == NULL) {
        fprintf(stderr, "libfuzzer_shim: %s not found: %s\n", name, dlerror());
        abort();
    }
    return fn;
}

#define FORWARD(ret, name, params, args)                       \
    ret name params {                                          \
        static ret(*real) params;                              \
        if (real == NULL) real = (ret(*) params)resolve(#name); \
        return real args;                                      \
    }

FORWARD(int, LLVMFuzzerRunDriver,
        (int *argc, char ***argv, int (*cb)(const uint8_t *, size_t)), (argc, argv, cb))
FORWARD(size_t, LLVMFuzzerMutate, (uint8_t *data, size_t size, size_t max_size),
        (data, size, max_size))
FORWARD(void, __sanitizer_cov_8bit_counters_init, (uint8_t *start, uint8_t *stop),
        (start, stop))
FORWARD(void, __sanitizer_cov_pcs_init, (const uintptr_t *begin, const uintptr_t *end),
        (begin, end))
FORWARD(void, __sanitizer_cov_trace_cmp8, (uint64_t a, uint64_t b), (a, b))
FORWARD(void, __sanitizer_cov_trace_const_cmp8, (uint64_t a, uint64_t b), (a, b))
FORWARD(void, __sanitizer_weak_hook_memcmp,
        (void *pc, const void *s1, const void *s2, size_t n, int result),
        (pc, s1, s2, n, result))
