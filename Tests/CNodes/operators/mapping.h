/* Where an address lies in this process's mappings: the mapped file's inode and the offset in
 * it, and the file's name. The same bytes of one memfd seen from two processes give the same
 * inode and offset, whatever the addresses: that is what zero-copy means. */
#ifndef MAPPING_H
#define MAPPING_H
#include <stdio.h>
#include <string.h>

static int find_mapping(const void *address, unsigned long *inode, unsigned long long *offset, char *name, size_t name_size)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    if (maps == NULL)
        return -1;
    char line[1024];
    int found = -1;
    while (fgets(line, sizeof line, maps) != NULL) {
        unsigned long long start, end, file_offset;
        char path[512] = "";
        unsigned long node;
        if (sscanf(line, "%llx-%llx %*s %llx %*s %lu %511[^\n]", &start, &end, &file_offset, &node, path) < 4)
            continue;
        unsigned long long at = (unsigned long long)(uintptr_t)address;
        if (at >= start && at < end) {
            *inode = node;
            *offset = file_offset + (at - start);
            snprintf(name, name_size, "%s", path);
            found = 0;
            break;
        }
    }
    fclose(maps);
    return found;
}
#endif
