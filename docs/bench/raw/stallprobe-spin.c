#include <stdio.h>
#include <time.h>
static long long ns(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1000000000LL+t.tv_nsec;}
int main(){long long t0=ns(),last=t0,now;long c20=0,c50=0,c100=0,c1m=0,mx=0;
while((now=ns())-t0<12000000000LL){long long g=now-last;last=now;if(g>20000)c20++;if(g>50000)c50++;if(g>100000)c100++;if(g>1000000)c1m++;if(g>mx)mx=g;}
printf("C spin 12s: >20us %ld >50us %ld >100us %ld >1ms %ld max %lld ns\n",c20,c50,c100,c1m,mx);}
