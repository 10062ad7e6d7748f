/* Presentation only: print a result document as JSON (--json) or as readable text. */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"

static void print_scalar(const cJSON *v)
{
    if (cJSON_IsString(v))
        fputs(v->valuestring, stdout);
    else if (cJSON_IsBool(v))
        fputs(cJSON_IsTrue(v) ? "yes" : "no", stdout);
    else if (cJSON_IsNull(v))
        fputs("-", stdout);
    else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == (double)(long long)d && d > -1e15 && d < 1e15)
            printf("%lld", (long long)d);
        else
            printf("%.4f", d);
    }
}

static bool is_scalar_array(const cJSON *a)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, a) if (cJSON_IsObject(e) || cJSON_IsArray(e)) return false;
    return true;
}

static void humanize(const char *key, char *buf, size_t cap)
{
    size_t i = 0;
    for (; key[i] && i + 1 < cap; i++)
        buf[i] = key[i] == '_' ? ' ' : key[i];
    buf[i] = '\0';
}

static void render(const cJSON *node, int indent)
{
    const cJSON *child;
    cJSON_ArrayForEach(child, node)
    {
        char label[128] = "";
        if (child->string)
            humanize(child->string, label, sizeof label);
        printf("%*s", indent, "");
        if (cJSON_IsObject(child)) {
            printf("%s:\n", label);
            render(child, indent + 2);
        } else if (cJSON_IsArray(child) && is_scalar_array(child)) {
            int n = cJSON_GetArraySize(child);
            printf("%s: ", label);
            if (n > 8) {
                printf("[%d values]\n", n);
                continue;
            }
            const cJSON *e;
            int i = 0;
            cJSON_ArrayForEach(e, child)
            {
                if (i++)
                    fputs(", ", stdout);
                print_scalar(e);
            }
            putchar('\n');
        } else if (cJSON_IsArray(child)) {
            printf("%s:\n", label);
            const cJSON *e;
            cJSON_ArrayForEach(e, child)
            {
                printf("%*s-\n", indent + 2, "");
                render(e, indent + 4);
            }
        } else {
            printf("%s: ", label);
            print_scalar(child);
            putchar('\n');
        }
    }
}

int cli_print_result(struct cli *c, const char *json)
{
    if (c->json) {
        puts(json);
        return EXIT_OK;
    }
    cJSON *doc = cJSON_Parse(json);
    if (!doc) {
        puts(json);
        return EXIT_OK;
    }
    /* The seeds wrap results as {"success":true,"data":{...}}: show the data. */
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(doc, "data");
    render(cJSON_IsObject(data) ? data : doc, 0);
    cJSON_Delete(doc);
    return EXIT_OK;
}
