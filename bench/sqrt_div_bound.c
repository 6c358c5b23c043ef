/*
 * What an IEEE-exact square root and division cost in the Adagrad loop, in cache:
 * the same loop with and without them (the second replaces g/sqrt(G+eps) by a product,
 * keeping the memory traffic).  Measures and prints; asserts nothing.
 *
 *   gcc -O3 -fopenmp -fno-math-errno -fno-trapping-math -ffp-contract=off \
 *       bench/sqrt_div_bound.c -o /tmp/sqrt_div_bound && /tmp/sqrt_div_bound 100000 2000
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
__attribute__((target("avx512f"))) __attribute__((noinline))
void with_sqrt_div(float *restrict p, const float *restrict g, float *restrict s, int64_t n, float lr, float eps) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) { s[i] = s[i] + g[i]*g[i]; p[i] -= lr*g[i]/sqrtf(s[i]+eps); }
}
__attribute__((target("avx512f"))) __attribute__((noinline))
void without(float *restrict p, const float *restrict g, float *restrict s, int64_t n, float lr, float eps) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) { s[i] = s[i] + g[i]*g[i]; p[i] -= lr*g[i]*(s[i]+eps); }
}
static double now(void){struct timespec t; clock_gettime(CLOCK_MONOTONIC,&t); return t.tv_sec+1e-9*t.tv_nsec;}
int main(int argc, char**argv){ int64_t n = atol(argv[1]); int reps = atoi(argv[2]);
 float *p=aligned_alloc(64,n*4),*g=aligned_alloc(64,n*4),*s=aligned_alloc(64,n*4);
 for(int64_t i=0;i<n;i++){p[i]=1;g[i]=0.001f*(i%7);s[i]=1;}
 double a=1e9,b=1e9;
 for (int r=0;r<9;r++){ double t=now(); for(int k=0;k<reps;k++) with_sqrt_div(p,g,s,n,1e-3f,1e-8f); t=(now()-t)/reps; if(t<a)a=t;
   t=now(); for(int k=0;k<reps;k++) without(p,g,s,n,1e-9f,1e-8f); t=(now()-t)/reps; if(t<b)b=t;}
 printf("n=%ld Adagrad loop: with sqrt+div %.1f us (%.0f GB/s, %.2f ns/elem); without %.1f us (%.0f GB/s)\n", n, a*1e6, 20.0*n/a/1e9, a*1e9/n, b*1e6, 20.0*n/b/1e9);
}
