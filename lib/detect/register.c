/*
 * Registration of two photos of the same skin by their spots (see bcd/lesion.h, step 2).
 *
 * Triangles: each of the strongest spots (up to TOP) with two of its NEIGH nearest strong
 * neighbours. A triangle's shape (its two shorter sides over the longest, and its turning
 * direction) does not change under a similarity; the ordering of its vertices by the side
 * opposite them makes corresponding vertices known. Every pair of triangles of the same
 * shape proposes a similarity; it scores the number of strong spots it brings within
 * TOL0 of a strong spot. Whole-photo proposals come from the whole-image alignment (the
 * prior) and from votes: every pair of alike strong spots votes for the shift of each turn
 * and scale of a grid (see vote_proposals()).
 *
 * The proposal that correlates best is grown area by area (see refine()); it and every
 * whole-photo proposal are also grown by closest spots (see refine_closest()): matches
 * within a shrinking tolerance, a homography fitted to them (residuals more than three
 * times the median dropped), then a smooth field of the remaining residuals (Gaussian
 * kernel regression, matches that disagree with their neighbours' field left out), and a
 * last greedy assignment of spots to spots that also weighs size and contrast. Of these
 * registrations, the one that matches the largest share of the strongest spots of both
 * photos wins (see agreement()).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lesion_internal.h"

#define TOP 120        /* strongest spots used for triangles */
#define SCORED 150     /* strongest spots that score a proposal */
#define NEIGH 6        /* nearest neighbours per spot */
#define SHAPE_TOL 0.035/* tolerance on a triangle's side ratios */
#define TOL0 0.006     /* inlier distance of a proposal, of the current longer side */
#define TOL1 0.004     /* matching tolerance of the last assignment */
#define TOL2 0.003     /* matching tolerance in an area under its own similarity */
#define MIN_INLIERS 5
#define LOCAL_R 0.1    /* proposals score the spots within this of their triangle */
#define VERIFIED 400   /* proposals checked by correlation */
#define MIN_NCC 0.35
#define VOTES 4       /* whole-photo proposals by voting */
#define HYPOTHESES (VOTES + 2) /* proposals grown into whole registrations */
#define ANCHOR_NCC 0.35 /* an area's own proposal joins the registration */
#define CELL 0.08      /* areas of the previous photo, normalized */
#define PER_CELL 4     /* proposals checked per area */
#define MIN_SCALE 0.4
#define MAX_SCALE 2.5
/* Follow-ups are taken the same way up: a proposal turned further is a coincidence of the
 * skin's texture (radians). */
#define MAX_ROTATION 0.8

/* ---- small linear algebra ------------------------------------------------------------ */

/* Solve A x = b (n x n, row-major, n <= 9) by Gaussian elimination with partial pivoting. */
static bool solve(double *A, double *b, double *x, int n)
{
    for (int c = 0; c < n; c++) {
        int p = c;
        for (int r = c + 1; r < n; r++)
            if (fabs(A[r * n + c]) > fabs(A[p * n + c]))
                p = r;
        if (fabs(A[p * n + c]) < 1e-12)
            return false;
        if (p != c) {
            for (int k = 0; k < n; k++) {
                double t = A[c * n + k];
                A[c * n + k] = A[p * n + k];
                A[p * n + k] = t;
            }
            double t = b[c];
            b[c] = b[p];
            b[p] = t;
        }
        for (int r = c + 1; r < n; r++) {
            double f = A[r * n + c] / A[c * n + c];
            for (int k = c; k < n; k++)
                A[r * n + k] -= f * A[c * n + k];
            b[r] -= f * b[c];
        }
    }
    for (int r = n - 1; r >= 0; r--) {
        double s = b[r];
        for (int k = r + 1; k < n; k++)
            s -= A[r * n + k] * x[k];
        x[r] = s / A[r * n + r];
    }
    return true;
}

/* Normalization of a point set: centroid to 0, mean distance sqrt(2). */
static void normalizer(const double *x, const double *y, size_t n, double T[3])
{
    double mx = 0, my = 0, d = 0;
    for (size_t i = 0; i < n; i++) {
        mx += x[i];
        my += y[i];
    }
    mx /= n;
    my /= n;
    for (size_t i = 0; i < n; i++)
        d += hypot(x[i] - mx, y[i] - my);
    d /= n;
    T[0] = d > 0 ? sqrt(2.0) / d : 1.0;
    T[1] = mx;
    T[2] = my;
}

bool bcd__fit_homography(double H[9], const double *sx, const double *sy, const double *dx, const double *dy,
                         size_t n)
{
    if (n < 4)
        return false;
    double Ts[3], Td[3];
    normalizer(sx, sy, n, Ts);
    normalizer(dx, dy, n, Td);
    double A[64] = { 0 }, b[8] = { 0 }, h[8];
    for (size_t i = 0; i < n; i++) {
        double x = (sx[i] - Ts[1]) * Ts[0], y = (sy[i] - Ts[2]) * Ts[0];
        double u = (dx[i] - Td[1]) * Td[0], v = (dy[i] - Td[2]) * Td[0];
        double r1[8] = { x, y, 1, 0, 0, 0, -u * x, -u * y };
        double r2[8] = { 0, 0, 0, x, y, 1, -v * x, -v * y };
        for (int a = 0; a < 8; a++) {
            for (int c = 0; c < 8; c++)
                A[a * 8 + c] += r1[a] * r1[c] + r2[a] * r2[c];
            b[a] += r1[a] * u + r2[a] * v;
        }
    }
    if (!solve(A, b, h, 8))
        return false;
    /* H = Td^-1 Hn Ts */
    double Hn[9] = { h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1.0 };
    double S[9] = { Ts[0], 0, -Ts[0] * Ts[1], 0, Ts[0], -Ts[0] * Ts[2], 0, 0, 1 };
    double Di[9] = { 1.0 / Td[0], 0, Td[1], 0, 1.0 / Td[0], Td[2], 0, 0, 1 };
    double M[9], R[9];
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++) {
            M[r * 3 + c] = 0;
            for (int k = 0; k < 3; k++)
                M[r * 3 + c] += Hn[r * 3 + k] * S[k * 3 + c];
        }
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++) {
            R[r * 3 + c] = 0;
            for (int k = 0; k < 3; k++)
                R[r * 3 + c] += Di[r * 3 + k] * M[k * 3 + c];
        }
    if (!isfinite(R[8]) || fabs(R[8]) < 1e-15)
        return false;
    for (int k = 0; k < 9; k++)
        H[k] = R[k] / R[8];
    return true;
}

bool bcd__fit_similarity(double s[4], const double *sx, const double *sy, const double *dx, const double *dy,
                         size_t n)
{
    if (n < 2)
        return false;
    double mx = 0, my = 0, mu = 0, mv = 0;
    for (size_t i = 0; i < n; i++) {
        mx += sx[i];
        my += sy[i];
        mu += dx[i];
        mv += dy[i];
    }
    mx /= n;
    my /= n;
    mu /= n;
    mv /= n;
    double sxx = 0, a = 0, b = 0;
    for (size_t i = 0; i < n; i++) {
        double x = sx[i] - mx, y = sy[i] - my, u = dx[i] - mu, v = dy[i] - mv;
        sxx += x * x + y * y;
        a += x * u + y * v;
        b += x * v - y * u;
    }
    if (sxx <= 0)
        return false;
    s[0] = a / sxx;
    s[1] = b / sxx;
    s[2] = mu - (s[0] * mx - s[1] * my);
    s[3] = mv - (s[1] * mx + s[0] * my);
    return isfinite(s[0]) && isfinite(s[1]);
}

static void homog_apply(const double H[9], double x, double y, double *ox, double *oy)
{
    double w = H[6] * x + H[7] * y + H[8];
    if (fabs(w) < 1e-12)
        w = 1e-12;
    *ox = (H[0] * x + H[1] * y + H[2]) / w;
    *oy = (H[3] * x + H[4] * y + H[5]) / w;
}

void bcd__warp_apply(const bcd__warp *w, double x, double y, double *ox, double *oy)
{
    double hx, hy;
    homog_apply(w->H, x, y, &hx, &hy);
    if (w->n > 0) {
        double sw = 0, sx = 0, sy = 0, k2 = 1.0 / (2.0 * w->sigma * w->sigma);
        for (size_t i = 0; i < w->n; i++) {
            double d2 = (hx - w->px[i]) * (hx - w->px[i]) + (hy - w->py[i]) * (hy - w->py[i]);
            double k = exp(-d2 * k2);
            sw += k;
            sx += k * w->dx[i];
            sy += k * w->dy[i];
        }
        /* the field fades to the homography where control points are sparse */
        double den = sw > 0.5 ? sw : 0.5;
        hx += sx / den;
        hy += sy / den;
    }
    *ox = hx;
    *oy = hy;
}

double bcd__warp_area_scale(const bcd__warp *w, double x, double y)
{
    const double h = 4.0;
    double ax, ay, bx, by, cx, cy, dx, dy;
    bcd__warp_apply(w, x - h, y, &ax, &ay);
    bcd__warp_apply(w, x + h, y, &bx, &by);
    bcd__warp_apply(w, x, y - h, &cx, &cy);
    bcd__warp_apply(w, x, y + h, &dx, &dy);
    double j00 = (bx - ax) / (2 * h), j10 = (by - ay) / (2 * h);
    double j01 = (dx - cx) / (2 * h), j11 = (dy - cy) / (2 * h);
    return fabs(j00 * j11 - j01 * j10);
}

void bcd__warp_clear(bcd__warp *w)
{
    free(w->px);
    free(w->py);
    free(w->dx);
    free(w->dy);
    w->px = w->py = w->dx = w->dy = NULL;
    w->n = 0;
}

bool bcd__spot_match_verified(const bcd__spot_match *m, double x, double y, bool strict)
{
    if (!m->verified || !(m->cell > 0))
        return false;
    int gx = (int)floor(x / m->cell), gy = (int)floor(y / m->cell);
    if (gx >= 0 && gy >= 0 && gx < m->gw && gy < m->gh && m->verified[gy * m->gw + gx])
        return true;
    if (strict)
        return false;
    size_t k = 0;
    for (size_t i = 0; i < m->nsup && k < 5; i++)
        k += fabs(m->sup_x[i] - x) <= m->sup_r && fabs(m->sup_y[i] - y) <= m->sup_r;
    return k >= 5;
}

void bcd__spot_match_clear(bcd__spot_match *m)
{
    free(m->verified);
    free(m->sup_x);
    bcd__warp_clear(&m->fwd);
    bcd__warp_clear(&m->bwd);
    free(m->match);
    memset(m, 0, sizeof *m);
}

/* ---- triangles ----------------------------------------------------------------------- */

struct tri {
    float r1, r2;   /* middle / longest side, shortest / longest */
    int v[3];       /* spots opposite the longest, middle, shortest side */
    signed char turn;
};

static int cmp_tri(const void *a, const void *b)
{
    float x = ((const struct tri *)a)->r1, y = ((const struct tri *)b)->r1;
    return (x > y) - (x < y);
}

/* Triangles of the n points (x, y); returns the count (*out allocated), -1 on OOM. */
static int triangles(const double *x, const double *y, int n, struct tri **out)
{
    int k = n - 1 < NEIGH ? n - 1 : NEIGH;
    *out = NULL;
    if (k < 2)
        return 0;
    struct tri *t = malloc((size_t)n * (size_t)(k * (k - 1) / 2) * sizeof *t);
    if (!t)
        return -1;
    int nt = 0;
    for (int i = 0; i < n; i++) {
        int nb[NEIGH];
        double nd[NEIGH];
        int m = 0;
        for (int j = 0; j < n; j++) {
            if (j == i)
                continue;
            double d = hypot(x[j] - x[i], y[j] - y[i]);
            if (m < k) {
                nb[m] = j;
                nd[m++] = d;
            } else if (d < nd[k - 1]) {
                nb[k - 1] = j;
                nd[k - 1] = d;
            } else {
                continue;
            }
            for (int q = m - 1; q > 0 && nd[q] < nd[q - 1]; q--) {
                double td = nd[q];
                nd[q] = nd[q - 1];
                nd[q - 1] = td;
                int ti = nb[q];
                nb[q] = nb[q - 1];
                nb[q - 1] = ti;
            }
        }
        for (int a = 0; a < m; a++) {
            for (int b = a + 1; b < m; b++) {
                int v[3] = { i, nb[a], nb[b] };
                /* side opposite each vertex */
                double s[3];
                for (int q = 0; q < 3; q++) {
                    int p1 = v[(q + 1) % 3], p2 = v[(q + 2) % 3];
                    s[q] = hypot(x[p1] - x[p2], y[p1] - y[p2]);
                }
                int o[3] = { 0, 1, 2 };
                for (int p = 0; p < 2; p++)
                    for (int q = 0; q < 2 - p; q++)
                        if (s[o[q]] < s[o[q + 1]]) {
                            int tt = o[q];
                            o[q] = o[q + 1];
                            o[q + 1] = tt;
                        }
                double s0 = s[o[0]], s1 = s[o[1]], s2 = s[o[2]];
                if (s0 <= 0 || s2 / s0 < 0.2 || (s0 - s1) < 0.05 * s0 || (s1 - s2) < 0.05 * s0)
                    continue;
                struct tri tr;
                tr.r1 = (float)(s1 / s0);
                tr.r2 = (float)(s2 / s0);
                for (int q = 0; q < 3; q++)
                    tr.v[q] = v[o[q]];
                double cr = (x[tr.v[1]] - x[tr.v[0]]) * (y[tr.v[2]] - y[tr.v[0]]) -
                            (y[tr.v[1]] - y[tr.v[0]]) * (x[tr.v[2]] - x[tr.v[0]]);
                tr.turn = cr > 0 ? 1 : -1;
                t[nt++] = tr;
            }
        }
    }
    qsort(t, (size_t)nt, sizeof *t, cmp_tri);
    *out = t;
    return nt;
}

/* The strong spots of one photo in normalized coordinates, with a grid for lookups. */
struct pts {
    int n;
    double *x, *y, *d; /* position, diameter (normalized) */
    double *k;         /* strength */
    int gw, gh;
    double cell;
    int *head, *next;
};

static void pts_free(struct pts *p)
{
    free(p->x);
    free(p->head);
    free(p->next);
}

static bool pts_make(struct pts *p, const bcd__spotmap *m, int n, double L)
{
    memset(p, 0, sizeof *p);
    p->n = n;
    p->x = malloc(4 * (size_t)(n + 1) * sizeof(double));
    p->cell = 0.02;
    double W = m->ow / L, Hh = m->oh / L;
    p->gw = (int)(W / p->cell) + 1;
    p->gh = (int)(Hh / p->cell) + 1;
    p->head = malloc((size_t)p->gw * p->gh * sizeof(int));
    p->next = malloc((size_t)(n + 1) * sizeof(int));
    if (!p->x || !p->head || !p->next) {
        pts_free(p);
        return false;
    }
    p->y = p->x + n + 1;
    p->d = p->y + n + 1;
    p->k = p->d + n + 1;
    for (int i = 0; i < p->gw * p->gh; i++)
        p->head[i] = -1;
    for (int i = 0; i < n; i++) {
        p->x[i] = m->spots[i].x / L;
        p->y[i] = m->spots[i].y / L;
        p->d[i] = m->spots[i].diameter / L;
        p->k[i] = m->spots[i].strength;
        int gx = (int)(p->x[i] / p->cell), gy = (int)(p->y[i] / p->cell);
        gx = gx < 0 ? 0 : (gx >= p->gw ? p->gw - 1 : gx);
        gy = gy < 0 ? 0 : (gy >= p->gh ? p->gh - 1 : gy);
        p->next[i] = p->head[gy * p->gw + gx];
        p->head[gy * p->gw + gx] = i;
    }
    return true;
}

/* Nearest point of p to (u, v) within tol (< cell) whose diameter is compatible with d;
 * -1 if none. */
static int pts_near(const struct pts *p, double u, double v, double tol, double d, double *dist, double ratio)
{
    int gx = (int)floor(u / p->cell), gy = (int)floor(v / p->cell), best = -1;
    double bd = tol * tol;
    for (int yy = gy - 1; yy <= gy + 1; yy++) {
        if (yy < 0 || yy >= p->gh)
            continue;
        for (int xx = gx - 1; xx <= gx + 1; xx++) {
            if (xx < 0 || xx >= p->gw)
                continue;
            for (int j = p->head[yy * p->gw + xx]; j >= 0; j = p->next[j]) {
                double d2 = (p->x[j] - u) * (p->x[j] - u) + (p->y[j] - v) * (p->y[j] - v);
                if (d2 >= bd)
                    continue;
                double r = (p->d[j] + 1e-4) / (d + 1e-4);
                if (r < 1.0 / ratio || r > ratio)
                    continue;
                bd = d2;
                best = j;
            }
        }
    }
    if (dist)
        *dist = sqrt(bd);
    return best;
}

/* Number of the points of P within radius R of (ox, oy) that the similarity s brings
 * within tol of a point of C of a compatible size; the sum of their distances in *err.
 * When pairs is set, the similarity is first refitted to the pairs found within twice
 * tol (a proposal from three spots is rough away from them), and s is updated. */
static int inliers(double s[4], const struct pts *P, double ox, double oy, double R, const struct pts *C,
                   double tol, double *err, bool refit)
{
    int c = 0;
    double e = 0, sc = hypot(s[0], s[1]);
    if (refit) {
        double sx[SCORED], sy[SCORED], dx[SCORED], dy[SCORED];
        int k = 0;
        for (int i = 0; i < P->n && k < SCORED; i++) {
            if (fabs(P->x[i] - ox) > R || fabs(P->y[i] - oy) > R)
                continue;
            double u = s[0] * P->x[i] - s[1] * P->y[i] + s[2], v = s[1] * P->x[i] + s[0] * P->y[i] + s[3];
            int j = pts_near(C, u, v, 2.0 * tol, P->d[i] * sc, NULL, 2.0);
            if (j < 0)
                continue;
            sx[k] = P->x[i];
            sy[k] = P->y[i];
            dx[k] = C->x[j];
            dy[k] = C->y[j];
            k++;
        }
        if (k < MIN_INLIERS) {
            *err = 0;
            return k;
        }
        double s2[4];
        if (bcd__fit_similarity(s2, sx, sy, dx, dy, (size_t)k)) {
            memcpy(s, s2, sizeof s2);
            sc = hypot(s[0], s[1]);
        }
    }
    for (int i = 0; i < P->n; i++) {
        if (fabs(P->x[i] - ox) > R || fabs(P->y[i] - oy) > R)
            continue;
        double u = s[0] * P->x[i] - s[1] * P->y[i] + s[2], v = s[1] * P->x[i] + s[0] * P->y[i] + s[3], d;
        if (pts_near(C, u, v, tol, P->d[i] * sc, &d, 2.0) >= 0) {
            c++;
            e += d;
        }
    }
    *err = e;
    return c;
}

/* ---- matching ------------------------------------------------------------------------ */

struct cand {
    double cost;
    int i, j;
};

static int cmp_cand(const void *a, const void *b)
{
    double x = ((const struct cand *)a)->cost, y = ((const struct cand *)b)->cost;
    return (x > y) - (x < y);
}

/* Greedy one-to-one assignment of previous spots (mapped by f) to current spots within
 * tol (current pixels, plus half the current spot's diameter), cheapest first; the cost
 * weighs distance, size and contrast. match[] gets the result; returns the count, -1 on
 * OOM. */
static int assign(const bcd__spotmap *P, const bcd__spotmap *C, const bcd__warp *f, double tol, double scale,
                  double ox, double oy, double R, int *match)
{
    size_t np = P->n, nc = C->n;
    for (size_t i = 0; i < np; i++)
        match[i] = -1;
    if (!np || !nc)
        return 0;
    /* a grid over the current spots */
    double cell = tol * 2.0 + 1.0;
    int gw = (int)(C->ow / cell) + 1, gh = (int)(C->oh / cell) + 1;
    if ((size_t)gw * gh > 4 * nc + 64) {
        cell = sqrt((double)C->ow * C->oh / (double)(nc + 16));
        if (cell < tol * 2.0 + 1.0)
            cell = tol * 2.0 + 1.0;
        gw = (int)(C->ow / cell) + 1;
        gh = (int)(C->oh / cell) + 1;
    }
    int *head = malloc((size_t)gw * gh * sizeof *head), *next = malloc(nc * sizeof *next);
    size_t cap = np * 4 + 16, nk = 0;
    struct cand *cands = malloc(cap * sizeof *cands);
    bool *used = calloc(nc, 1);
    if (!head || !next || !cands || !used) {
        free(head);
        free(next);
        free(cands);
        free(used);
        return -1;
    }
    for (int i = 0; i < gw * gh; i++)
        head[i] = -1;
    for (size_t j = 0; j < nc; j++) {
        int gx = (int)(C->spots[j].x / cell), gy = (int)(C->spots[j].y / cell);
        gx = gx < 0 ? 0 : (gx >= gw ? gw - 1 : gx);
        gy = gy < 0 ? 0 : (gy >= gh ? gh - 1 : gy);
        next[j] = head[gy * gw + gx];
        head[gy * gw + gx] = (int)j;
    }
    int rc = 0;
    for (size_t i = 0; i < np && rc == 0; i++) {
        const bcd__spot *p = &P->spots[i];
        if (fabs(p->x - ox) > R || fabs(p->y - oy) > R)
            continue;
        double u, v;
        bcd__warp_apply(f, p->x, p->y, &u, &v);
        int gx = (int)(u / cell), gy = (int)(v / cell);
        for (int yy = gy - 1; yy <= gy + 1; yy++) {
            if (yy < 0 || yy >= gh)
                continue;
            for (int xx = gx - 1; xx <= gx + 1; xx++) {
                if (xx < 0 || xx >= gw)
                    continue;
                for (int j = head[yy * gw + xx]; j >= 0; j = next[j]) {
                    const bcd__spot *c = &C->spots[j];
                    double d = hypot(c->x - u, c->y - v);
                    double t = tol + 0.5 * c->diameter;
                    if (d > t)
                        continue;
                    double ls = log((c->diameter + 1.0) / (p->diameter * scale + 1.0));
                    if (fabs(ls) > 1.2) /* a diameter over three times larger or smaller */
                        continue;
                    double lc = log((c->contrast + 0.02) / (p->contrast + 0.02));
                    if (fabs(lc) > 1.1) /* three times darker or paler: another spot */
                        continue;
                    double cost = d / t + 0.5 * fabs(ls) + 0.3 * fabs(lc);
                    if (nk == cap) {
                        cap *= 2;
                        struct cand *n2 = realloc(cands, cap * sizeof *n2);
                        if (!n2) {
                            rc = -1;
                            break;
                        }
                        cands = n2;
                    }
                    cands[nk++] = (struct cand){ cost, (int)i, j };
                }
            }
        }
    }
    int count = 0;
    if (rc == 0) {
        qsort(cands, nk, sizeof *cands, cmp_cand);
        for (size_t k = 0; k < nk; k++) {
            if (match[cands[k].i] >= 0 || used[cands[k].j])
                continue;
            match[cands[k].i] = cands[k].j;
            used[cands[k].j] = true;
            count++;
        }
    }
    free(head);
    free(next);
    free(cands);
    free(used);
    return rc < 0 ? -1 : count;
}

/* Pairs of match[] into arrays (previous xy, current xy); returns the count. */
static size_t pairs(const bcd__spotmap *P, const bcd__spotmap *C, const int *match, double *sx, double *sy,
                    double *dx, double *dy, int *idx)
{
    size_t k = 0;
    for (size_t i = 0; i < P->n; i++) {
        if (match[i] < 0)
            continue;
        sx[k] = P->spots[i].x;
        sy[k] = P->spots[i].y;
        dx[k] = C->spots[match[i]].x;
        dy[k] = C->spots[match[i]].y;
        if (idx)
            idx[k] = (int)i;
        k++;
    }
    return k;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Fit H to the pairs robustly: least squares, drop residuals over 3x the median (at least
 * floor), fit again. keep[] marks the pairs kept. */
static bool robust_homography(double H[9], double *sx, double *sy, double *dx, double *dy, size_t n,
                              double floor_px, bool *keep)
{
    for (size_t i = 0; i < n; i++)
        keep[i] = true;
    if (!bcd__fit_homography(H, sx, sy, dx, dy, n))
        return false;
    double *r = malloc(n * sizeof *r), *tx = malloc(4 * n * sizeof *tx);
    if (!r || !tx) {
        free(r);
        free(tx);
        return false;
    }
    bool ok = true;
    for (int round = 0; round < 2 && ok; round++) {
        for (size_t i = 0; i < n; i++) {
            double u, v;
            homog_apply(H, sx[i], sy[i], &u, &v);
            r[i] = hypot(u - dx[i], v - dy[i]);
        }
        memcpy(tx, r, n * sizeof *r);
        qsort(tx, n, sizeof *tx, cmp_double);
        double lim = 3.0 * tx[n / 2];
        if (lim < floor_px)
            lim = floor_px;
        size_t k = 0;
        double *ax = tx, *ay = tx + n, *bx = tx + 2 * n, *by = tx + 3 * n;
        for (size_t i = 0; i < n; i++) {
            keep[i] = r[i] <= lim;
            if (keep[i]) {
                ax[k] = sx[i];
                ay[k] = sy[i];
                bx[k] = dx[i];
                by[k] = dy[i];
                k++;
            }
        }
        double H2[9];
        if (k >= 6 && bcd__fit_homography(H2, ax, ay, bx, by, k))
            memcpy(H, H2, sizeof H2);
        else
            ok = round > 0;
    }
    free(r);
    free(tx);
    return ok;
}

/* The smooth field of f: residuals of the kept pairs after f->H, those that disagree with
 * their neighbours' field (leave one out) by more than tol dropped. */
static bool build_field(bcd__warp *f, const double *sx, const double *sy, const double *dx, const double *dy,
                        size_t n, double sigma, double tol)
{
    bcd__warp_clear(f);
    if (n < 6)
        return true;
    f->px = malloc(n * sizeof(double));
    f->py = malloc(n * sizeof(double));
    f->dx = malloc(n * sizeof(double));
    f->dy = malloc(n * sizeof(double));
    if (!f->px || !f->py || !f->dx || !f->dy) {
        bcd__warp_clear(f);
        return false;
    }
    f->sigma = sigma;
    for (size_t i = 0; i < n; i++) {
        double u, v;
        homog_apply(f->H, sx[i], sy[i], &u, &v);
        f->px[i] = u;
        f->py[i] = v;
        f->dx[i] = dx[i] - u;
        f->dy[i] = dy[i] - v;
    }
    /* leave-one-out check */
    bool *ok = malloc(n);
    if (!ok) {
        bcd__warp_clear(f);
        return false;
    }
    double k2 = 1.0 / (2.0 * sigma * sigma);
    for (size_t i = 0; i < n; i++) {
        double sw = 0, ax = 0, ay = 0;
        for (size_t j = 0; j < n; j++) {
            if (j == i)
                continue;
            double d2 = (f->px[i] - f->px[j]) * (f->px[i] - f->px[j]) + (f->py[i] - f->py[j]) * (f->py[i] - f->py[j]);
            double k = exp(-d2 * k2);
            sw += k;
            ax += k * f->dx[j];
            ay += k * f->dy[j];
        }
        double den = sw > 0.5 ? sw : 0.5;
        ok[i] = hypot(f->dx[i] - ax / den, f->dy[i] - ay / den) <= tol;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ok[i])
            continue;
        f->px[k] = f->px[i];
        f->py[k] = f->py[i];
        f->dx[k] = f->dx[i];
        f->dy[k] = f->dy[i];
        k++;
    }
    free(ok);
    f->n = k;
    return true;
}

/* A homography is trusted only when the matches it was fitted to spread over a good part
 * of the previous photo (a tenth of its extent both ways) and it maps that photo's frame
 * to a convex quadrilateral with no side scaled beyond the bounds: fitted to one corner,
 * its perspective terms extrapolate wildly. */
static bool plausible(const double H[9], const bcd__spotmap *P, const double *sx, const double *sy, size_t n)
{
    double x0 = 1e30, x1 = -1e30, y0 = 1e30, y1 = -1e30;
    for (size_t i = 0; i < n; i++) {
        x0 = fmin(x0, sx[i]);
        x1 = fmax(x1, sx[i]);
        y0 = fmin(y0, sy[i]);
        y1 = fmax(y1, sy[i]);
    }
    if (x1 - x0 < P->ow / 10.0 || y1 - y0 < P->oh / 10.0)
        return false;
    double cx[4] = { 0, P->ow - 1.0, P->ow - 1.0, 0 }, cy[4] = { 0, 0, P->oh - 1.0, P->oh - 1.0 }, u[4], v[4];
    for (int k = 0; k < 4; k++) {
        double w = H[6] * cx[k] + H[7] * cy[k] + H[8];
        if (w <= 0.05)
            return false;
        u[k] = (H[0] * cx[k] + H[1] * cy[k] + H[2]) / w;
        v[k] = (H[3] * cx[k] + H[4] * cy[k] + H[5]) / w;
    }
    int sign = 0;
    for (int k = 0; k < 4; k++) {
        int a = k, b = (k + 1) % 4, c = (k + 2) % 4;
        double cr = (u[b] - u[a]) * (v[c] - v[b]) - (v[b] - v[a]) * (u[c] - u[b]);
        int sg = cr > 0 ? 1 : -1;
        if (sign && sg != sign)
            return false;
        sign = sg;
        double side = hypot(u[b] - u[a], v[b] - v[a]), orig = hypot(cx[b] - cx[a], cy[b] - cy[a]);
        if (side < MIN_SCALE * orig || side > MAX_SCALE * orig)
            return false;
    }
    return true;
}

static void similarity_to_h(double H[9], const double s[4])
{
    double h[9] = { s[0], -s[1], s[2], s[1], s[0], s[3], 0, 0, 1 };
    memcpy(H, h, sizeof h);
}

/* Normalized cross-correlation of the darkness maps (illumination cancels in them) of
 * the two photos around the current-photo point (cx, cy) (normalized units), the
 * previous photo sampled through the inverse of the similarity s (normalized units).
 * -1 when too little of the patch is skin in both. */
static double patch_ncc(const bcd__spotmap *P, const bcd__spotmap *C, const double s[4], double cx, double cy,
                        double L, double Lp, int G, double step)
{
    /* G: samples each side of the centre; step: current analysis pixels between them */
    double det = s[0] * s[0] + s[1] * s[1];
    if (det <= 0)
        return -1;
    double ia = s[0] / det, ib = s[1] / det;
    double ax = (cx * L + 0.5) * C->fx - 0.5, ay = (cy * L + 0.5) * C->fy - 0.5;
    double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0, ta = 0, tb = 0, taa = 0, tbb = 0, tab = 0;
    int n = 0, tot = 0;
    for (int gy = -G; gy <= G; gy++) {
        for (int gx = -G; gx <= G; gx++) {
            double x = ax + gx * step, y = ay + gy * step;
            tot++;
            if (x < 0 || y < 0 || x > C->w - 1 || y > C->h - 1)
                continue;
            size_t ci = (size_t)lround(y) * C->w + (size_t)lround(x);
            if (!C->skin[ci] || C->dark[ci])
                continue;
            /* to normalized current, back through the similarity, to previous analysis pixels */
            double un = ((x + 0.5) / C->fx - 0.5) / L - s[2], vn = ((y + 0.5) / C->fy - 0.5) / L - s[3];
            double pxn = ia * un + ib * vn, pyn = -ib * un + ia * vn;
            double px = (pxn * Lp + 0.5) * P->fx - 0.5, py = (pyn * Lp + 0.5) * P->fy - 0.5;
            if (px < 0 || py < 0 || px > P->w - 1 || py > P->h - 1)
                continue;
            size_t pi = (size_t)lround(py) * P->w + (size_t)lround(px);
            if (!P->skin[pi] || P->dark[pi])
                continue;
            double a = bcd__plane_at(C->dots, (float)x, (float)y), b = bcd__plane_at(P->dots, (float)px, (float)py);
            double a2 = bcd__plane_at(C->con, (float)x, (float)y), b2 = bcd__plane_at(P->con, (float)px, (float)py);
            sa += a;
            sb += b;
            saa += a * a;
            sbb += b * b;
            sab += a * b;
            ta += a2;
            tb += b2;
            taa += a2 * a2;
            tbb += b2 * b2;
            tab += a2 * b2;
            n++;
        }
    }
    if (n < tot / 3)
        return -1;
    /* the better of two views: the spots alone (blind to shadow edges and texture), and
     * the whole darkness map (more to go on where spots are few or found unevenly) */
    double r1 = -1, r2 = -1;
    double va = saa - sa * sa / n, vb = sbb - sb * sb / n;
    if (va > 0 && vb > 0)
        r1 = (sab - sa * sb / n) / sqrt(va * vb);
    va = taa - ta * ta / n;
    vb = tbb - tb * tb / n;
    if (va > 0 && vb > 0)
        r2 = (tab - ta * tb / n) / sqrt(va * vb);
    return r1 > r2 ? r1 : r2;
}

/* The similarity s (normalized units) adjusted around the previous-photo point (px, py)
 * for the best correlation of the darkness maps: shifts, rotations and scales on a grid,
 * then a finer grid around the best. Returns the correlation. */
static double local_search(const bcd__spotmap *P, const bcd__spotmap *C, double s[4], double px, double py,
                           double L, double Lp)
{
    /* one parameter group at a time: the shift on a 5 x 5 grid, then rotation, then scale,
     * then the shift on a finer grid (about 40 correlations instead of a full grid's 225) */
    double bs[4];
    memcpy(bs, s, sizeof bs);
    double best = -2;
    static const struct {
        double shift, rot, scl;
        int ns, nr, nk;
    } steps[4] = { { 0.005, 0, 0, 2, 0, 0 }, { 0, 0.06, 0, 0, 1, 0 }, { 0, 0, 0.05, 0, 0, 1 },
                   { 0.0017, 0, 0, 1, 0, 0 } };
    for (int st = 0; st < 4; st++) {
        double base[4];
        memcpy(base, bs, sizeof base);
        double u0 = base[0] * px - base[1] * py + base[2], v0 = base[1] * px + base[0] * py + base[3];
        for (int ir = -steps[st].nr; ir <= steps[st].nr; ir++) {
            for (int is = -steps[st].nk; is <= steps[st].nk; is++) {
                double rho = 1.0 + is * steps[st].scl, th = ir * steps[st].rot;
                double cr = rho * cos(th), sr = rho * sin(th);
                double a = base[0] * cr - base[1] * sr, b = base[0] * sr + base[1] * cr;
                for (int iy = -steps[st].ns; iy <= steps[st].ns; iy++) {
                    for (int ix = -steps[st].ns; ix <= steps[st].ns; ix++) {
                        double q[4] = { a, b, 0, 0 };
                        double u = u0 + ix * steps[st].shift, v = v0 + iy * steps[st].shift;
                        q[2] = u - (a * px - b * py);
                        q[3] = v - (b * px + a * py);
                        double r = patch_ncc(P, C, q, u, v, L, Lp, 20, 5.0);
                        if (r > best) {
                            best = r;
                            memcpy(bs, q, sizeof bs);
                        }
                    }
                }
            }
        }
    }
    memcpy(s, bs, sizeof bs);
    double u = bs[0] * px - bs[1] * py + bs[2], v = bs[1] * px + bs[0] * py + bs[3];
    return patch_ncc(P, C, bs, u, v, L, Lp, 40, 2.5);
}

/* The local similarity of the mapping f (photo pixels) at previous-photo pixel (x, y), in
 * normalized units. */
static void local_similarity(const bcd__warp *f, double x, double y, double L, double Lp, double s[4])
{
    const double h = 8.0;
    double ax, ay, bx, by, cx, cy, dx, dy, ux, uy;
    bcd__warp_apply(f, x - h, y, &ax, &ay);
    bcd__warp_apply(f, x + h, y, &bx, &by);
    bcd__warp_apply(f, x, y - h, &cx, &cy);
    bcd__warp_apply(f, x, y + h, &dx, &dy);
    bcd__warp_apply(f, x, y, &ux, &uy);
    double j00 = (bx - ax) / (2 * h), j10 = (by - ay) / (2 * h), j01 = (dx - cx) / (2 * h), j11 = (dy - cy) / (2 * h);
    double a = 0.5 * (j00 + j11), b = 0.5 * (j10 - j01);
    s[0] = a * Lp / L;
    s[1] = b * Lp / L;
    double xn = x / Lp, yn = y / Lp;
    s[2] = ux / L - (s[0] * xn - s[1] * yn);
    s[3] = uy / L - (s[1] * xn + s[0] * yn);
}

struct proposal {
    double s[4];
    int c;
    double e, ox, oy;
};

static int cmp_proposal(const void *a, const void *b)
{
    const struct proposal *x = a, *y = b;
    if (x->c != y->c)
        return y->c - x->c;
    return (x->e > y->e) - (x->e < y->e);
}

/* The share of the strongest spots of both photos (weighted by strength) that the
 * mapping matched, among those it brings onto the other photo's skin. Moles are found in
 * both photos whatever the light; a wrong registration matches them only by chance,
 * however well the skin's texture or a shadow's stripes correlate. */
#define AGREE_TOP 40
#define MIN_AGREE 0.3 /* a registration that matches less is declined */
#define MIN_BEYOND_CHANCE 0.25 /* ... or one that matches too little beyond chance */

static bool on_skin(const bcd__spotmap *m, double x, double y)
{
    int ax = (int)lround((x + 0.5) * m->fx - 0.5), ay = (int)lround((y + 0.5) * m->fy - 0.5);
    if (ax < 0 || ay < 0 || ax >= m->w || ay >= m->h)
        return false;
    size_t i = (size_t)ay * m->w + ax;
    return m->skin[i] && !m->dark[i];
}

static double agreement(const bcd__spot_match *m, const bcd__spotmap *P, const bcd__spotmap *C)
{
    double num = 0, den = 0;
    size_t np = P->n < AGREE_TOP ? P->n : AGREE_TOP, nc = C->n < AGREE_TOP ? C->n : AGREE_TOP;
    for (size_t i = 0; i < np; i++) {
        double u, v;
        bcd__warp_apply(&m->fwd, P->spots[i].x, P->spots[i].y, &u, &v);
        if (!on_skin(C, u, v))
            continue;
        den += P->spots[i].strength;
        num += m->match[i] >= 0 ? P->spots[i].strength : 0;
    }
    for (size_t j = 0; j < nc; j++) {
        double u, v;
        bcd__warp_apply(&m->bwd, C->spots[j].x, C->spots[j].y, &u, &v);
        if (!on_skin(P, u, v))
            continue;
        den += C->spots[j].strength;
        for (size_t i = 0; i < P->n; i++)
            if (m->match[i] == (int)j) {
                num += C->spots[j].strength;
                break;
            }
    }
    return den > 0 ? num / den : 0;
}

/* The agreement that chance gives on these two photos: the mapping's homography moved by a
 * tenth of the photo each way (no field), its spots assigned as the real mapping's are;
 * the largest of the four. Where the skin shows many faint spots (grain, pores, mottling
 * of dark skin) a wrong mapping still meets a spot near every place; a registration must
 * match clearly more than that. -1 on OOM. */
static double chance_agreement(const bcd__spot_match *m, const bcd__spotmap *P, const bcd__spotmap *C, double L,
                               double scale)
{
    static const int sx[4] = { 1, -1, 0, 0 }, sy[4] = { 0, 0, 1, -1 };
    bcd__spot_match t;
    memset(&t, 0, sizeof t);
    t.match = malloc((P->n + 1) * sizeof *t.match);
    if (!t.match)
        return -1;
    double best = 0;
    for (int k = 0; k < 4; k++) {
        double d[2] = { 0.1 * L * sx[k], 0.1 * L * sy[k] };
        /* fwd: H then the shift; bwd: the shift undone, then its homography */
        memcpy(t.fwd.H, m->fwd.H, sizeof t.fwd.H);
        for (int c = 0; c < 3; c++) {
            t.fwd.H[c] += d[0] * m->fwd.H[6 + c];
            t.fwd.H[3 + c] += d[1] * m->fwd.H[6 + c];
        }
        const double *b = m->bwd.H;
        for (int r = 0; r < 3; r++) {
            t.bwd.H[3 * r] = b[3 * r];
            t.bwd.H[3 * r + 1] = b[3 * r + 1];
            t.bwd.H[3 * r + 2] = b[3 * r + 2] - b[3 * r] * d[0] - b[3 * r + 1] * d[1];
        }
        if (assign(P, C, &t.fwd, TOL1 * L, scale, 0, 0, INFINITY, t.match) < 0) {
            free(t.match);
            return -1;
        }
        double a = agreement(&t, P, C);
        best = a > best ? a : best;
    }
    free(t.match);
    return best;
}

/* The mapping out->fwd refined on every spot it brings together, once per tolerance of
 * tols (of the current longer side): the assignment, a homography on all matches
 * (outliers dropped), the field on its residuals; then the last assignment, the backward
 * mapping, the residual, the support and the agreement. sx: scratch for 4 (P->n + 1)
 * doubles, keep for P->n + 1. */
static const double polish_tols[] = { TOL1, TOL1 };

static bcd_status polish(bcd__spot_match *out, const bcd__spotmap *P, const bcd__spotmap *C, double *sx, bool *keep,
                         double L, double Lp, double scale, const double *tols, int ntol)
{
    size_t n = P->n, k;
    double *sy = sx + n, *dx = sy + n, *dy = dx + n;
    bcd__warp *f = &out->fwd;
    bcd_status st = BCD_OK;
    /* the whole mapping refined on every spot it brings together: a homography on all
     * matches (outliers dropped), the field on its residuals */
    for (int it = 0; it < ntol && st == BCD_OK; it++) {
        int c = assign(P, C, f, tols[it] * L, scale, 0, 0, INFINITY, out->match);
        if (c < 0) {
            st = BCD_ENOMEM;
            break;
        }
        k = pairs(P, C, out->match, sx, sy, dx, dy, NULL);
        double H[9];
        if (k >= 12 && robust_homography(H, sx, sy, dx, dy, k, 0.003 * L, keep) && plausible(H, P, sx, sy, k))
            memcpy(f->H, H, sizeof H);
        if (k >= 6 && !build_field(f, sx, sy, dx, dy, k, 0.04 * L, 0.004 * L))
            st = BCD_ENOMEM;
    }
    if (st == BCD_OK) {
        /* the last assignment with the whole mapping, then the field again on it */
        int c = assign(P, C, f, TOL1 * L, scale, 0, 0, INFINITY, out->match);
        if (c < 0)
            st = BCD_ENOMEM;
        else
            out->matched = (size_t)c;
    }
    if (st == BCD_OK) {
        k = pairs(P, C, out->match, sx, sy, dx, dy, NULL);
        if (!build_field(f, sx, sy, dx, dy, k, 0.05 * L, 0.004 * L)) {
            st = BCD_ENOMEM;
        } else {
            double Hb[9];
            bcd__warp *b = &out->bwd;
            if (k >= 8 && bcd__fit_homography(Hb, dx, dy, sx, sy, k)) {
                memcpy(b->H, Hb, sizeof Hb);
            } else {
                /* invert the forward homography */
                const double *h = f->H;
                double det = h[0] * (h[4] * h[8] - h[5] * h[7]) - h[1] * (h[3] * h[8] - h[5] * h[6]) +
                             h[2] * (h[3] * h[7] - h[4] * h[6]);
                double inv[9] = { (h[4] * h[8] - h[5] * h[7]) / det, (h[2] * h[7] - h[1] * h[8]) / det,
                                  (h[1] * h[5] - h[2] * h[4]) / det, (h[5] * h[6] - h[3] * h[8]) / det,
                                  (h[0] * h[8] - h[2] * h[6]) / det, (h[2] * h[3] - h[0] * h[5]) / det,
                                  (h[3] * h[7] - h[4] * h[6]) / det, (h[1] * h[6] - h[0] * h[7]) / det,
                                  (h[0] * h[4] - h[1] * h[3]) / det };
                for (int q = 0; q < 9; q++)
                    b->H[q] = inv[q] / inv[8];
            }
            if (!build_field(b, dx, dy, sx, sy, k, 0.05 * Lp, 0.004 * Lp))
                st = BCD_ENOMEM;
        }
    }
    if (st == BCD_OK) {
        double *r = malloc((k + 1) * sizeof *r);
        if (r) {
            for (size_t i = 0; i < k; i++) {
                double u, v;
                bcd__warp_apply(f, sx[i], sy[i], &u, &v);
                r[i] = hypot(u - dx[i], v - dy[i]);
            }
            double *tmp = malloc((k + 1) * sizeof *tmp);
            if (tmp)
                memcpy(tmp, r, k * sizeof *r);
            qsort(r, k, sizeof *r, cmp_double);
            out->residual = k ? r[k / 2] : NAN;
            /* the support: pairs within 2.5 times the median error (and 2 analysis px) */
            out->sup_x = tmp ? malloc(2 * (k + 1) * sizeof(double)) : NULL;
            if (out->sup_x) {
                out->sup_y = out->sup_x + k + 1;
                double lim = 2.5 * out->residual + 2.0 / C->fx;
                for (size_t i = 0; i < k; i++)
                    if (tmp[i] <= lim) {
                        out->sup_x[out->nsup] = sx[i];
                        out->sup_y[out->nsup] = sy[i];
                        out->nsup++;
                    }
                out->sup_r = 0.06 * Lp;
            }
            free(tmp);
            free(r);
        }
        out->agree = agreement(out, P, C);
        out->chance = chance_agreement(out, P, C, L, scale);
        if (out->chance < 0)
            st = BCD_ENOMEM;
        /* beyond chance: the share of what chance leaves unmatched that the mapping matched */
        double beyond = out->chance < 1.0 ? (out->agree - out->chance) / (1.0 - out->chance) : 0.0;
        out->ok = k >= (size_t)MIN_INLIERS && out->agree >= MIN_AGREE && beyond >= MIN_BEYOND_CHANCE;
        if (k < (size_t)MIN_INLIERS)
            out->why = "too few spots stayed matched after refining the registration";
        else if (out->agree >= MIN_AGREE && !out->ok)
            out->why = "the spots of the two photos match no better than chance (the skin shows too many faint "
                       "spots, or too little of the same skin)";
        else if (!out->ok)
            out->why = "the strongest spots of the two photos do not match (different skin, or too little of it in both)";
    }
    return st;
}

/* The registration grown from one verified proposal bq (see bcd__spots_register()):
 * out->match (allocated, all -1) and the rest of out filled. */
static bcd_status refine(bcd__spot_match *out, const bcd__spotmap *P, const bcd__spotmap *C, const struct proposal *bq,
                         double L, double Lp, int gcw, int gch)
{
    double scale = hypot(bq->s[0], bq->s[1]) * L / Lp;
    size_t n = P->n;
    double *sx = malloc(4 * (n + 1) * sizeof *sx);
    bool *keep = malloc(n + 1);
    double *pcost = malloc((n + 1) * sizeof *pcost);
    bool *ctaken = calloc(C->n + 1, 1);
    if (!sx || !keep || !pcost || !ctaken) {
        free(sx);
        free(keep);
        free(pcost);
        free(ctaken);
        return BCD_ENOMEM;
    }
    double *sy = sx + n, *dx = sy + n, *dy = dx + n;
    bcd_status st = BCD_OK;
    /* region growing over the areas of the previous photo, from the anchor's outwards: each
     * area's similarity predicted by the mapping so far, adjusted for the best correlation
     * of the darkness maps; an area that correlates adds the matches of its spots, and the
     * mapping (homography and smooth field) is refitted as areas join */
    int ncell = gcw * gch;
    int *state = calloc((size_t)ncell, sizeof *state), *queue = malloc((size_t)ncell * sizeof *queue);
    int *hops = calloc((size_t)ncell, sizeof *hops);
    double *cxs = calloc((size_t)ncell * 3, sizeof *cxs);
    if (!state || !queue || !cxs || !hops) {
        free(hops);
        free(state);
        free(queue);
        free(cxs);
        free(sx);
        free(keep);
        free(pcost);
        free(ctaken);
        return BCD_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        int gx = (int)(P->spots[i].x / Lp / CELL), gy = (int)(P->spots[i].y / Lp / CELL);
        gx = gx < 0 ? 0 : (gx >= gcw ? gcw - 1 : gx);
        gy = gy < 0 ? 0 : (gy >= gch ? gch - 1 : gy);
        double *c3 = cxs + 3 * (size_t)(gy * gcw + gx);
        c3[0] += P->spots[i].x;
        c3[1] += P->spots[i].y;
        c3[2] += 1;
    }
    struct pts SA; /* every current spot */
    if (!pts_make(&SA, C, (int)C->n, L)) {
        free(state);
        free(queue);
        free(cxs);
        free(hops);
        free(sx);
        free(keep);
        free(pcost);
        free(ctaken);
        return BCD_ENOMEM;
    }
    bcd__warp *f = &out->fwd;
    double s_px[4] = { bq->s[0] * L / Lp, bq->s[1] * L / Lp, bq->s[2] * L, bq->s[3] * L };
    similarity_to_h(f->H, s_px);
    int start;
    {
        int gx = (int)(bq->ox / CELL), gy = (int)(bq->oy / CELL);
        gx = gx < 0 ? 0 : (gx >= gcw ? gcw - 1 : gx);
        gy = gy < 0 ? 0 : (gy >= gch ? gch - 1 : gy);
        start = gy * gcw + gx;
    }
    int head = 0, tail = 0, accepted = 0, since_fit = 0;
    queue[tail++] = start;
    state[start] = 1;
    size_t k = 0;
    while (head < tail && st == BCD_OK) {
        int ci = queue[head++];
        double *c3 = cxs + 3 * (size_t)ci;
        int gx0 = ci % gcw, gy0 = ci / gcw;
        double r = -1, q[4];
        /* the area's spots' centre, or its own centre where it has few */
        double px = c3[2] >= 2 ? c3[0] / c3[2] : (gx0 + 0.5) * CELL * Lp;
        double py = c3[2] >= 2 ? c3[1] / c3[2] : (gy0 + 0.5) * CELL * Lp;
        if (px < P->ow && py < P->oh) {
            if (ci == start && accepted == 0)
                memcpy(q, bq->s, sizeof q);
            else
                local_similarity(f, px, py, L, Lp, q);
            r = local_search(P, C, q, px / Lp, py / Lp, L, Lp);
        }
        bool ok = r >= ANCHOR_NCC;
        if (!ok)
            hops[ci]++;
        else
            hops[ci] = 0;
        /* neighbours: also beyond an area that did not correlate (a strap, a shadow), one
         * area further */
        if (hops[ci] <= 1)
            for (int oy2 = -1; oy2 <= 1; oy2++)
                for (int ox2 = -1; ox2 <= 1; ox2++) {
                    int nx = gx0 + ox2, ny = gy0 + oy2;
                    if ((ox2 || oy2) && nx >= 0 && ny >= 0 && nx < gcw && ny < gch && !state[ny * gcw + nx]) {
                        state[ny * gcw + nx] = 1;
                        hops[ny * gcw + nx] = hops[ci];
                        queue[tail++] = ny * gcw + nx;
                    }
                }
        if (!ok) {
            state[ci] = 3;
            continue;
        }
        state[ci] = 2;
        accepted++;
        since_fit++;
        /* the matches of the area's spots under its own similarity */
        double sq = hypot(q[0], q[1]) * L / Lp;
        for (size_t i = 0; i < n; i++) {
            const bcd__spot *p = &P->spots[i];
            double xn = p->x / Lp, yn = p->y / Lp;
            if (xn < gx0 * CELL || xn >= (gx0 + 1) * CELL || yn < gy0 * CELL || yn >= (gy0 + 1) * CELL)
                continue;
            double u = q[0] * xn - q[1] * yn + q[2], v = q[1] * xn + q[0] * yn + q[3], bd;
            double tol = fmin(TOL2 + 0.5 * p->diameter * sq / L, 0.9 * SA.cell);
            int bj = pts_near(&SA, u, v, tol, p->diameter * sq / L, &bd, 3.0);
            bd *= L;
            if (bj >= 0) {
                out->match[i] = bj;
                pcost[i] = bd;
            }
        }
        /* refit now and then */
        if (since_fit >= 3 || head == tail) {
            since_fit = 0;
            k = pairs(P, C, out->match, sx, sy, dx, dy, NULL);
            double H[9];
            if (k >= 12) {
                /* a homography that is not plausible leaves the mapping as it was */
                if (robust_homography(H, sx, sy, dx, dy, k, 0.01 * L, keep) && plausible(H, P, sx, sy, k))
                    memcpy(f->H, H, sizeof H);
            } else if (k >= 3) {
                double s2[4];
                if (bcd__fit_similarity(s2, sx, sy, dx, dy, k))
                    similarity_to_h(f->H, s2);
            }
            if (k >= 6 && !build_field(f, sx, sy, dx, dy, k, 0.04 * L, 0.004 * L))
                st = BCD_ENOMEM;
        }
    }
    pts_free(&SA);
    out->areas = accepted;
    out->verified = malloc((size_t)ncell);
    if (out->verified) {
        for (int i = 0; i < ncell; i++)
            out->verified[i] = state[i] == 2;
        out->gw = gcw;
        out->gh = gch;
        out->cell = CELL * Lp;
    } else {
        st = BCD_ENOMEM;
    }
    free(state);
    free(queue);
    free(cxs);
    free(hops);
    /* one previous spot per current spot: the closest */
    for (size_t i = 0; i < n; i++) {
        int j = out->match[i];
        if (j < 0)
            continue;
        for (size_t i2 = i + 1; i2 < n; i2++) {
            if (out->match[i2] != j)
                continue;
            if (pcost[i2] < pcost[i]) {
                out->match[i] = -1;
                break;
            }
            out->match[i2] = -1;
        }
    }
    free(ctaken);
    free(pcost);
    k = pairs(P, C, out->match, sx, sy, dx, dy, NULL);
    if (st == BCD_OK && k >= 6 && !build_field(f, sx, sy, dx, dy, k, 0.04 * L, 0.004 * L))
        st = BCD_ENOMEM;
    if (st == BCD_OK)
        st = polish(out, P, C, sx, keep, L, Lp, scale, polish_tols, 2);
    free(sx);
    free(keep);
    return st;
}

/* A registration from one whole-photo proposal bq by closest spots alone: match within a
 * shrinking tolerance, refit the homography and the field, again. Where the proposal is
 * close (follow-ups framed alike), this follows the body without trusting the texture's
 * correlation area by area. The areas verified are those whose darkness maps correlate
 * through the final mapping. */
static bcd_status refine_closest(bcd__spot_match *out, const bcd__spotmap *P, const bcd__spotmap *C,
                                 const struct proposal *bq, double L, double Lp, int gcw, int gch)
{
    double scale = hypot(bq->s[0], bq->s[1]) * L / Lp;
    size_t n = P->n;
    double *sx = malloc(4 * (n + 1) * sizeof *sx);
    bool *keep = malloc(n + 1);
    out->verified = malloc((size_t)gcw * gch + 1);
    if (!sx || !keep || !out->verified) {
        free(sx);
        free(keep);
        return BCD_ENOMEM;
    }
    double s_px[4] = { bq->s[0] * L / Lp, bq->s[1] * L / Lp, bq->s[2] * L, bq->s[3] * L };
    similarity_to_h(out->fwd.H, s_px);
    static const double tols[] = { 0.012, 0.008, 0.006, 0.005, TOL1, TOL1 };
    bcd_status st = polish(out, P, C, sx, keep, L, Lp, scale, tols, (int)(sizeof tols / sizeof *tols));
    out->gw = gcw;
    out->gh = gch;
    out->cell = CELL * Lp;
    out->areas = 0;
    /* an area is verified when the darkness maps correlate there through the mapping, or
     * when three matches that agree with it lie in it; then an area with nothing to go on
     * (plain skin) between at least four verified neighbours, where the mapping is held
     * from every side */
    int ncell = gcw * gch;
    int *nsup = calloc((size_t)ncell + 1, sizeof *nsup);
    if (!nsup)
        st = BCD_ENOMEM;
    for (size_t i = 0; st == BCD_OK && i < out->nsup; i++) {
        int gx = (int)(out->sup_x[i] / out->cell), gy = (int)(out->sup_y[i] / out->cell);
        if (gx >= 0 && gy >= 0 && gx < gcw && gy < gch)
            nsup[gy * gcw + gx]++;
    }
    for (int gy = 0; gy < gch; gy++)
        for (int gx = 0; gx < gcw; gx++) {
            double px = (gx + 0.5) * CELL * Lp, py = (gy + 0.5) * CELL * Lp, q[4], u, v;
            bool ok = false;
            if (st == BCD_OK && px < P->ow && py < P->oh) {
                ok = nsup[gy * gcw + gx] >= 3;
                if (!ok) {
                    local_similarity(&out->fwd, px, py, L, Lp, q);
                    bcd__warp_apply(&out->fwd, px, py, &u, &v);
                    ok = patch_ncc(P, C, q, u / L, v / L, L, Lp, 20, 2.5) >= ANCHOR_NCC;
                }
            }
            out->verified[gy * gcw + gx] = ok;
        }
    for (int gy = 0; st == BCD_OK && gy < gch; gy++)
        for (int gx = 0; gx < gcw; gx++) {
            int k = 0;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int x = gx + dx, y = gy + dy;
                    k += (dx || dy) && x >= 0 && y >= 0 && x < gcw && y < gch && (out->verified[y * gcw + x] & 1);
                }
            if (!out->verified[gy * gcw + gx] && k >= 4)
                out->verified[gy * gcw + gx] = 2;
        }
    for (int i = 0; i < ncell; i++) {
        out->verified[i] = out->verified[i] != 0;
        out->areas += out->verified[i];
    }
    free(nsup);
    free(sx);
    free(keep);
    return st;
}

/* ---- voting -------------------------------------------------------------------------- */

/* Whole-photo proposals by voting (a generalized Hough transform). Follow-ups are framed
 * about alike: within VOTE_ROT of turn and a scale in [VOTE_SMIN, VOTE_SMAX]. For each
 * turn and scale on a grid, every pair of a previous and a current strong spot of
 * compatible sizes votes for the shift that would bring them together; the shift with
 * the most votes over the whole photo is that turn's and scale's candidate. Triangles need
 * the same three neighbours in both photos; votes need only that many spots of the whole
 * photo move together, which holds where spots are found unevenly (shadow bands, few
 * moles among faint freckles). Writes up to max distinct proposals, most votes first. */
#define VOTE_ROT 0.28   /* radians each way */
#define VOTE_RSTEP 0.035
#define VOTE_SMIN 0.75
#define VOTE_SMAX 1.34
#define VOTE_SSTEP 0.03 /* of log scale */
#define VOTE_T 0.45     /* shifts each way, normalized */
#define VOTE_BIN 0.015

struct vote {
    double v, s[4];
};

static int cmp_vote(const void *a, const void *b)
{
    double x = ((const struct vote *)a)->v, y = ((const struct vote *)b)->v;
    return (x < y) - (x > y);
}

static bool same_similarity(const double *a, const double *b)
{
    double ua = a[0] * 0.5 - a[1] * 0.5 + a[2], va = a[1] * 0.5 + a[0] * 0.5 + a[3];
    double ub = b[0] * 0.5 - b[1] * 0.5 + b[2], vb = b[1] * 0.5 + b[0] * 0.5 + b[3];
    return hypot(ua - ub, va - vb) < 0.03 && fabs(atan2(a[1], a[0]) - atan2(b[1], b[0])) < 0.1 &&
           fabs(log(hypot(a[0], a[1]) / hypot(b[0], b[1]))) < 0.07;
}

/* Where a whole-photo proposal q is checked by correlation: the centre of the previous
 * spots it brings near a current one ((cx, cy) when none). */
static void inlier_centre(struct proposal *q, const struct pts *SP, const struct pts *SC, double cx, double cy)
{
    double mx = 0, my = 0, sc = hypot(q->s[0], q->s[1]);
    int m = 0;
    for (int i = 0; i < SP->n; i++) {
        double u = q->s[0] * SP->x[i] - q->s[1] * SP->y[i] + q->s[2];
        double v = q->s[1] * SP->x[i] + q->s[0] * SP->y[i] + q->s[3];
        if (pts_near(SC, u, v, 2.0 * TOL0, SP->d[i] * sc, NULL, 2.0) >= 0) {
            mx += SP->x[i];
            my += SP->y[i];
            m++;
        }
    }
    q->ox = m ? mx / m : cx;
    q->oy = m ? my / m : cy;
}

static int vote_proposals(const struct pts *SP, const struct pts *SC, double cpx, double cpy, double ccx,
                          double ccy, struct proposal *out, int max)
{
    int nr = (int)(VOTE_ROT / VOTE_RSTEP), ns = (int)(log(VOTE_SMAX / VOTE_SMIN) / VOTE_SSTEP) + 1;
    int G = (int)(2 * VOTE_T / VOTE_BIN) + 1;
    int ncombo = (2 * nr + 1) * ns;
    float *acc = calloc((size_t)G * G, sizeof *acc);
    struct vote *best = malloc((size_t)ncombo * sizeof *best);
    if (!acc || !best) {
        free(acc);
        free(best);
        return -1;
    }
    int nb = 0;
    double kmax = 1e-9;
    for (int i = 0; i < SP->n; i++)
        kmax = fmax(kmax, SP->k[i]);
    for (int j = 0; j < SC->n; j++)
        kmax = fmax(kmax, SC->k[j]);
    for (int ir = -nr; ir <= nr; ir++) {
        for (int is = 0; is < ns; is++) {
            double th = ir * VOTE_RSTEP, sc = VOTE_SMIN * exp(is * VOTE_SSTEP);
            double a = sc * cos(th), b = sc * sin(th);
            for (int i = 0; i < SP->n; i++) {
                double px = SP->x[i] - cpx, py = SP->y[i] - cpy;
                double ux = a * px - b * py + ccx, uy = b * px + a * py + ccy, dp = SP->d[i] * sc;
                for (int j = 0; j < SC->n; j++) {
                    double r = (SC->d[j] + 1e-4) / (dp + 1e-4);
                    if (r < 0.5 || r > 2.0)
                        continue;
                    double tx = SC->x[j] - ux, ty = SC->y[j] - uy;
                    int gx = (int)floor((tx + VOTE_T) / VOTE_BIN), gy = (int)floor((ty + VOTE_T) / VOTE_BIN);
                    if (gx < 0 || gy < 0 || gx >= G || gy >= G)
                        continue;
                    /* a pair of alike spots votes more, and strong pairs (moles) most */
                    double lr = log(r);
                    acc[(size_t)gy * G + gx] += (float)(exp(-lr * lr * 4.0) * fmin(SP->k[i], SC->k[j]) / kmax);
                }
            }
            /* the best 2 x 2 window of bins (a peak split between neighbours counts whole) */
            double bv = 0;
            int bx = 0, by = 0;
            for (int y = 0; y + 1 < G; y++)
                for (int x = 0; x + 1 < G; x++) {
                    size_t o = (size_t)y * G + x;
                    double v = acc[o] + acc[o + 1] + acc[o + G] + acc[o + G + 1];
                    if (v > bv) {
                        bv = v;
                        bx = x;
                        by = y;
                    }
                }
            memset(acc, 0, (size_t)G * G * sizeof *acc);
            if (bv <= 0)
                continue;
            double tx = (bx + 1) * VOTE_BIN - VOTE_T, ty = (by + 1) * VOTE_BIN - VOTE_T;
            struct vote *v = &best[nb++];
            v->v = bv;
            v->s[0] = a;
            v->s[1] = b;
            v->s[2] = ccx + tx - (a * cpx - b * cpy);
            v->s[3] = ccy + ty - (b * cpx + a * cpy);
        }
    }
    free(acc);
    qsort(best, (size_t)nb, sizeof *best, cmp_vote);
    int n = 0;
    for (int k = 0; k < nb && n < max; k++) {
        bool dup = false;
        for (int h = 0; h < n && !dup; h++)
            dup = same_similarity(best[k].s, out[h].s);
        if (dup)
            continue;
        struct proposal *q = &out[n];
        memcpy(q->s, best[k].s, sizeof q->s);
        /* refined on its inliers over the whole photo; checked where they are */
        q->c = inliers(q->s, SP, cpx, cpy, 2.0, SC, 2.0 * TOL0, &q->e, true);
        if (q->c < MIN_INLIERS)
            continue;
        inlier_centre(q, SP, SC, cpx, cpy);
        n++;
    }
    free(best);
    return n;
}

bcd_status bcd__spots_register(bcd__spot_match *out, const bcd__spotmap *P, const bcd__spotmap *C,
                               const double *prior)
{
    memset(out, 0, sizeof *out);
    out->match = malloc((P->n + 1) * sizeof(int));
    if (!out->match)
        return BCD_ENOMEM;
    for (size_t i = 0; i < P->n; i++)
        out->match[i] = -1;
    double L = C->ow > C->oh ? C->ow : C->oh, Lp = P->ow > P->oh ? P->ow : P->oh;
    int np = (int)(P->n < TOP ? P->n : TOP), nc = (int)(C->n < TOP ? C->n : TOP);
    if (np < 3 || nc < 3) {
        out->why = "too few spots on the skin to register the photos";
        return BCD_OK;
    }
    struct pts SP, SC;
    if (!pts_make(&SP, P, (int)(P->n < SCORED ? P->n : SCORED), Lp)) {
        return BCD_ENOMEM;
    }
    if (!pts_make(&SC, C, (int)(C->n < SCORED ? C->n : SCORED), L)) {
        pts_free(&SP);
        return BCD_ENOMEM;
    }
    struct tri *tp = NULL, *tc = NULL;
    int ntp = triangles(SP.x, SP.y, np, &tp), ntc = triangles(SC.x, SC.y, nc, &tc);
    if (ntp < 0 || ntc < 0) {
        free(tp);
        free(tc);
        pts_free(&SP);
        pts_free(&SC);
        return BCD_ENOMEM;
    }
    size_t nprop = 0, capprop = 1024;
    struct proposal *prop = malloc(capprop * sizeof *prop);
    if (!prop) {
        free(tp);
        free(tc);
        pts_free(&SP);
        pts_free(&SC);
        return BCD_ENOMEM;
    }
    bcd_status st = BCD_OK;
    if (prior) {
        /* the prior's linear part taken as a similarity (normalized units) */
        double a = 0.5 * (prior[0] + prior[4]) * Lp / L, b = 0.5 * (prior[3] - prior[1]) * Lp / L;
        struct proposal q = { { a, b, prior[2] / L, prior[5] / L }, 0, 0, 0.5, 0.5 };
        q.c = inliers(q.s, &SP, 0.5, 0.5, 2.0, &SC, TOL0, &q.e, false) + 1000; /* tried first */
        inlier_centre(&q, &SP, &SC, 0.5 * P->ow / Lp, 0.5 * P->oh / Lp);
        prop[nprop++] = q;
    }
    {
        int nv = vote_proposals(&SP, &SC, 0.5 * P->ow / Lp, 0.5 * P->oh / Lp, 0.5 * C->ow / L, 0.5 * C->oh / L,
                                prop + nprop, VOTES);
        if (nv < 0)
            st = BCD_ENOMEM;
        for (int k = 0; k < nv; k++)
            prop[nprop++].c += 1000; /* tried first, like the prior */
    }
    for (int a = 0; a < ntp && st == BCD_OK; a++) {
        const struct tri *t = &tp[a];
        /* current triangles with r1 within the tolerance: binary search for the first */
        int lo = 0, hi = ntc;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (tc[mid].r1 < t->r1 - SHAPE_TOL)
                lo = mid + 1;
            else
                hi = mid;
        }
        double tx = (SP.x[t->v[0]] + SP.x[t->v[1]] + SP.x[t->v[2]]) / 3.0;
        double ty = (SP.y[t->v[0]] + SP.y[t->v[1]] + SP.y[t->v[2]]) / 3.0;
        for (int b = lo; b < ntc && tc[b].r1 <= t->r1 + SHAPE_TOL; b++) {
            const struct tri *u = &tc[b];
            if (u->turn != t->turn || fabs(u->r2 - t->r2) > SHAPE_TOL)
                continue;
            double sx[3], sy[3], dx[3], dy[3];
            struct proposal q;
            for (int k = 0; k < 3; k++) {
                sx[k] = SP.x[t->v[k]];
                sy[k] = SP.y[t->v[k]];
                dx[k] = SC.x[u->v[k]];
                dy[k] = SC.y[u->v[k]];
            }
            if (!bcd__fit_similarity(q.s, sx, sy, dx, dy, 3))
                continue;
            double sc = hypot(q.s[0], q.s[1]);
            if (sc < MIN_SCALE || sc > MAX_SCALE || fabs(atan2(q.s[1], q.s[0])) > MAX_ROTATION)
                continue;
            q.c = inliers(q.s, &SP, tx, ty, LOCAL_R, &SC, TOL0, &q.e, true);
            if (q.c < MIN_INLIERS)
                continue;
            q.ox = tx;
            q.oy = ty;
            if (nprop == capprop) {
                capprop *= 2;
                struct proposal *np2 = realloc(prop, capprop * sizeof *np2);
                if (!np2) {
                    st = BCD_ENOMEM;
                    break;
                }
                prop = np2;
            }
            prop[nprop++] = q;
        }
    }
    free(tp);
    free(tc);
    pts_free(&SP);
    pts_free(&SC);
    if (st != BCD_OK) {
        free(prop);
        return st;
    }
    /* per area of the previous photo (cells of CELL), the proposals with the most inliers
     * are checked by the darkness patterns themselves (their correlation kept in e) */
    qsort(prop, nprop, sizeof *prop, cmp_proposal);
    int gcw = (int)(P->ow / Lp / CELL) + 1, gch = (int)(P->oh / Lp / CELL) + 1;
    int *tried = calloc((size_t)gcw * gch, sizeof *tried);
    if (!tried) {
        free(prop);
        return BCD_ENOMEM;
    }
    int best = -1;
    double best_ncc = -1;
    bool *evaluated = calloc(nprop + 1, 1);
    if (!evaluated) {
        free(tried);
        free(prop);
        return BCD_ENOMEM;
    }
    for (size_t k = 0; k < nprop; k++) {
        struct proposal *q = &prop[k];
        int gx = (int)(q->ox / CELL), gy = (int)(q->oy / CELL);
        gx = gx < 0 ? 0 : (gx >= gcw ? gcw - 1 : gx);
        gy = gy < 0 ? 0 : (gy >= gch ? gch - 1 : gy);
        int ci = gy * gcw + gx;
        if (tried[ci] >= PER_CELL && q->c < 1000)
            continue;
        tried[ci]++;
        double ucx = q->s[0] * q->ox - q->s[1] * q->oy + q->s[2], ucy = q->s[1] * q->ox + q->s[0] * q->oy + q->s[3];
        double r;
        if (q->c >= 1000) {
            /* a whole-photo proposal is only roughly right in any one place (the body bends,
             * the camera tilts): adjusted there first, twice for a wider reach */
            double s2[4];
            memcpy(s2, q->s, sizeof s2);
            local_search(P, C, s2, q->ox, q->oy, L, Lp);
            r = local_search(P, C, s2, q->ox, q->oy, L, Lp);
        } else {
            r = patch_ncc(P, C, q->s, ucx, ucy, L, Lp, 40, 2.5);
        }
        q->e = r; /* from here on: the correlation */
        evaluated[k] = true;
        if (r > best_ncc) {
            best_ncc = r;
            best = (int)k;
        }
    }
    free(tried);
    /* the hypotheses grown into whole registrations: the proposal that correlates best, and
     * every whole-photo proposal (the prior, the votes) */
    struct proposal hyp[HYPOTHESES];
    int nh = 0;
    if (best >= 0 && best_ncc >= MIN_NCC)
        hyp[nh++] = prop[best];
    for (size_t k = 0; k < nprop && nh < HYPOTHESES; k++) {
        if (prop[k].c < 1000)
            continue;
        bool same = false;
        for (int h = 0; h < nh && !same; h++)
            same = same_similarity(prop[k].s, hyp[h].s);
        if (!same)
            hyp[nh++] = prop[k];
    }
    free(prop);
    free(evaluated);
    if (nh == 0) {
        out->why = "the spots of the two photos do not line up (different skin, or too little of it in both)";
        return BCD_OK;
    }
    st = BCD_OK;
    bcd__spot_match best_m = *out; /* match allocated, all -1 */
    bool have = false;
    /* each hypothesis grown both ways (area by area, and by closest spots); the one that
     * matches the most of the strongest spots wins */
    for (int t = 0; t < nh + 1 && st == BCD_OK; t++) {
        /* the first hypothesis both ways, the whole-photo ones by closest spots */
        const struct proposal *hq = &hyp[t < 2 ? 0 : t - 1];
        bcd__spot_match m;
        memset(&m, 0, sizeof m);
        m.match = malloc((P->n + 1) * sizeof(int));
        if (!m.match) {
            st = BCD_ENOMEM;
            break;
        }
        for (size_t i = 0; i < P->n; i++)
            m.match[i] = -1;
        st = t ? refine_closest(&m, P, C, hq, L, Lp, gcw, gch) : refine(&m, P, C, hq, L, Lp, gcw, gch);
        if (st == BCD_OK && (!have || (m.ok && !best_m.ok) || (m.ok == best_m.ok && m.agree > best_m.agree))) {
            if (have)
                bcd__spot_match_clear(&best_m);
            else
                free(best_m.match);
            best_m = m;
            have = true;
        } else {
            bcd__spot_match_clear(&m);
        }
    }
    if (st != BCD_OK) {
        if (have)
            bcd__spot_match_clear(&best_m);
        else
            free(best_m.match);
        memset(out, 0, sizeof *out);
        return st;
    }
    *out = best_m;
    return BCD_OK;
}
