#include <stdio.h>
#include <bcd.h>
int main(void) { printf("%s\n", bcd_version()); return 0; }
