#include "e5_layers.c"
/* dump_tok model in.txt out.bin query|passage : per text: int32 T, then T*H floats (last layer, incl bos/eos) */
int main(int argc, char **argv) {
  e5_model *m = e5_load(argv[1]);
  int isq = strcmp(argv[4], "query") == 0;
  FILE *f = fopen(argv[2], "r"); FILE *o = fopen(argv[3], "wb");
  int H = m->H; char line[8192]; int n=0;
  const char *pfx = isq ? "query: " : "passage: ";
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    char buf[9000]; snprintf(buf, sizeof buf, "%s%s", pfx, line);
    int content[600]; int c = tok_content(&m->tok, buf, content, 510);
    int T=0, ids[520], pos[520], ss[520], se[520];
    ids[T]=m->tok.bos; pos[T]=T; T++;
    for (int j=0;j<c;j++){ids[T]=content[j];pos[T]=T;T++;}
    ids[T]=m->tok.eos; pos[T]=T; T++;
    for (int t=0;t<T;t++){ss[t]=0;se[t]=T;}
    int segoff[2]={0,T};
    float *hid = malloc(sizeof(float)*T*H);
    forward_batch(m, ids, pos, ss, se, segoff, 1, T, NULL, hid);
    fwrite(&T,4,1,o); fwrite(hid,sizeof(float),T*H,o); free(hid); n++;
  }
  fclose(o); fprintf(stderr,"%d texts\n",n); return 0;
}
