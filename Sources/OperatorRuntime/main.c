/*
 * apus-operator-runtime: the program a runtime node runs (a node with `operators:`). It loads
 * libapus.so with its symbols global, so the operators it then loads find the API (apus.h, and
 * dora's operator helpers) in that one copy of the library, and hands over to it.
 */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char folder[PATH_MAX];
    ssize_t length = readlink("/proc/self/exe", folder, sizeof folder - 1);
    if (length <= 0) {
        perror("apus-operator-runtime: cannot find its own path");
        return 1;
    }
    folder[length] = '\0';
    char *slash = strrchr(folder, '/');
    if (slash != NULL) *slash = '\0';

    /* A SwiftPM build folder has libApusCAPI.so beside this program; an installation has
     * lib/libapus.so one folder up (this program is lib/apus/apus-operator-runtime). */
    const char *candidates[] = {"/libApusCAPI.so", "/../libapus.so"};
    char path[PATH_MAX + 32];
    void *library = NULL;
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0] && library == NULL; i++) {
        snprintf(path, sizeof path, "%s%s", folder, candidates[i]);
        if (access(path, R_OK) == 0) library = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    }
    if (library == NULL) {
        fprintf(stderr, "apus-operator-runtime: cannot load the Apus library beside '%s': %s\n", folder,
                dlerror() ? dlerror() : "not found");
        return 1;
    }
    int (*entry)(int, char **) = (int (*)(int, char **))dlsym(library, "apus_operator_runtime_main");
    if (entry == NULL) {
        fprintf(stderr, "apus-operator-runtime: '%s' has no apus_operator_runtime_main\n", path);
        return 1;
    }
    return entry(argc, argv);
}
