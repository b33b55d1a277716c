/* Runs a libFuzzer target's LLVMFuzzerTestOneInput over every file in the
 * directories given on the command line, so that the seed corpus and every
 * input a fuzzer once found troublesome are replayed by CTest on every
 * build, sanitizers included. A directory that is missing fails the run:
 * a corpus or regression directory lost in a move must not turn the
 * replay into a pass over nothing (each holds a .keep when empty). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX (1 << 20)

static int run_file(const char *path, uint8_t *buf)
{
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "replay: cannot open %s\n", path);
    return -1;
  }
  size_t n = fread(buf, 1, REPLAY_MAX, f);
  fclose(f);
  /* Hand the target an exact-size heap copy so ASan sees any overread. */
  uint8_t *copy = malloc(n ? n : 1);
  if (!copy)
    return -1;
  memcpy(copy, buf, n);
  LLVMFuzzerTestOneInput(copy, n);
  free(copy);
  return 0;
}

int main(int argc, char **argv)
{
  static uint8_t buf[REPLAY_MAX];
  unsigned count = 0;
  for (int i = 1; i < argc; i++) {
    DIR *d = opendir(argv[i]);
    if (!d) {
      fprintf(stderr, "replay: the directory %s is missing\n", argv[i]);
      return 1;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (e->d_name[0] == '.')
        continue;
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
      if (run_file(path, buf) != 0) {
        closedir(d);
        return 1;
      }
      count++;
    }
    closedir(d);
  }
  /* Always exercise the empty input too. */
  LLVMFuzzerTestOneInput((const uint8_t *)"", 0);
  printf("replayed %u inputs\n", count);
  return 0;
}
