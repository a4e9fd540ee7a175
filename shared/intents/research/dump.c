#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int e5_embed_layers(void *m, const char **texts, int n, int is_query, float *out);
int e5_num_layers(const void *m);
int e5_dim(const void *m);
void *e5_load(const char *path);
int e5_embed_batch(void *m, const char **texts, int n, int is_query, float *out);
int main(int argc, char **argv) {
  /* dump model in.txt out.bin query|passage [check] */
  void *m = e5_load(argv[1]);
  int isq = strcmp(argv[4], "query") == 0;
  FILE *f = fopen(argv[2], "r"); FILE *o = fopen(argv[3], "wb");
  int H = e5_dim(m), NL = e5_num_layers(m);
  float *out = malloc(sizeof(float) * (NL + 1) * H);
  float *ref = malloc(sizeof(float) * H);
  char line[8192]; int n = 0; double maxdiff = 0;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    const char *t = line;
    if (e5_embed_layers(m, &t, 1, isq, out)) return 2;
    if (argc > 5) { e5_embed_batch(m, &t, 1, isq, ref); for (int i=0;i<H;i++){double d=ref[i]-out[NL*H+i]; if(d<0)d=-d; if(d>maxdiff)maxdiff=d;} }
    fwrite(out, sizeof(float), (NL + 1) * H, o); n++;
  }
  fclose(o); fprintf(stderr, "%d texts, layers %d, dim %d, maxdiff %g\n", n, NL, H, maxdiff);
  return 0;
}
