/* exp_compare_cmd.c - `rlprice compare`: load a history (database, HDF5 feature store or the
 * Dominick's preset), run the comparison and print the headline table (exp_compare.h). */
#include "rlp_cmd.h"
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_util.h"
#include "exp_compare.h"
#include "db_history_src.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: rlprice compare [--db CONNINFO | --cache FILE.h5 | --preset dominicks] [--config FILE]\n"
            "                       [--products ID,ID,...] [--json OUT] [--device auto|cpu|cuda] [--KEY=VALUE ...]\n"
            "  Trains DQN, DDPG and LinUCB per product, adds the best fixed price and the historical\n"
            "  policy, and compares them by offline policy evaluation (docs/compare.md).  Settings come\n"
            "  from --config (key = value lines) and then flags such as --seed=2, --dqn_steps=100,\n"
            "  --dqn.lr=0.0005, --ckpt_dir=DIR (see `compare.*` keys in docs/compare.md).\n");
}

static int split_list(char *s, char ***out) {
    int n = 1;
    for (char *p = s; *p; p++) n += *p == ',';
    char **v = calloc((size_t)n, sizeof *v);
    if (!v) return -1;
    int k = 0;
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) v[k++] = tok;
    *out = v;
    return k;
}

static void progress_cb(void *ctx, const char *stage, long done, long total) {
    (void)ctx;
    ENG_INFO("compare: %s %ld/%ld products", stage, done, total);
}

static void print_cell(const ope_value *v) {
    if (!v->available) printf(" %-30s", "-");
    else {
        char b[64];
        snprintf(b, sizeof b, "%.4g [%.4g, %.4g]", v->estimate, v->ci_low, v->ci_high);
        printf(" %-30s", b);
    }
}

static void print_headline(const exp_results *r) {
    static const ope_est imm[] = {OPE_IPS, OPE_SNIPS, OPE_DM, OPE_DR, OPE_SWITCH_DR, OPE_KIPS};
    static const ope_est lt[] = {OPE_PDIS, OPE_WPDIS, OPE_FQE};
    int n_ok = 0, n_short = 0, n_div = 0, n_fail = 0;
    for (int p = 0; p < r->n_products; p++) {
        exp_status s = r->products[p].status;
        n_ok += s == EXP_OK;
        n_short += s == EXP_SKIP_SHORT;
        n_div += s == EXP_DIVERGED;
        n_fail += s == EXP_FAILED;
    }
    printf("comparison %s for %s, data %s\n", r->run_id, r->run_date, r->data_source);
    printf("products: %d (ok %d, diverged %d, short %d, failed %d)\n", r->n_products, n_ok, n_div, n_short, n_fail);
    printf("reward: %s\n\n", r->reward_text);
    printf("one-step value (mean reward per period; ips..switch_dr on the POOLED evaluation rows of all products,\n"
           "others mean over products; 95%% bootstrap CI, products resampled as clusters)\n%-8s",
           "agent");
    for (size_t i = 0; i < sizeof imm / sizeof imm[0]; i++) printf(" %-30s", ope_est_name(imm[i]));
    printf("\n");
    for (int a = 0; a < EXP_N_AGENTS; a++) {
        printf("%-8s", exp_agent_name((exp_agent)a));
        for (size_t i = 0; i < sizeof imm / sizeof imm[0]; i++) print_cell(&r->total_immediate[a].v[imm[i]]);
        printf("\n");
    }
    printf("history's value is its on-policy mean (ips: its weights are exactly 1); dm/dr of history are "
           "model-based, shown for reference\n");
    printf("\npooled rows: ESS of the importance weights, and the uplift over history (%s, same rows)\n",
           strstr(r->config_text ? r->config_text : "", "compare.uplift_ref = 1") ? "DR minus history's DR"
                                                                                : "DR minus history's on-policy mean");
    for (int a = 0; a < EXP_N_AGENTS; a++) {
        const ope_overlap *o = &r->total_immediate[a].overlap;
        printf("%-8s ESS %.1f of %d rows%s", exp_agent_name((exp_agent)a), o->ess, o->n, o->poor ? " (poor)" : "");
        if (r->total_uplift[a].available) {
            printf("  uplift");
            print_cell(&r->total_uplift[a]);
            int pos = 0, n = 0;
            for (int p = 0; p < r->n_products; p++) {
                const ope_value *v = &r->products[p].uplift_shrunk[a];
                if (!v->available) continue;
                n++;
                pos += v->ci_low > 0;
            }
            printf(" shrunk lower bound > 0: %d of %d products", pos, n);
        }
        printf("\n");
    }
    printf("\nlong-term value (discounted return per trajectory)\n%-8s", "agent");
    for (size_t i = 0; i < sizeof lt / sizeof lt[0]; i++) printf(" %-30s", ope_est_name(lt[i]));
    printf("\n");
    for (int a = 0; a < EXP_N_AGENTS; a++) {
        printf("%-8s", exp_agent_name((exp_agent)a));
        for (size_t i = 0; i < sizeof lt / sizeof lt[0]; i++) print_cell(&r->total_longterm[a].v[lt[i]]);
        printf("\n");
    }
    printf("\nwinner, one-step (by %s; history by its on-policy mean): %s\nwinner, long-term (by %s): %s\n",
           ope_est_name(r->total_immediate[EXP_AGENT_FIXED].recommended), exp_agent_name(r->winner_immediate),
           ope_est_name(r->total_longterm[0].recommended), exp_agent_name(r->winner_longterm));
    printf("seconds: features %.2f, train %.2f, ope %.2f\n", r->seconds_features, r->seconds_train, r->seconds_ope);
}

static int write_json_cb(FILE *f, void *ctx) {
    const char *s = json_object_to_json_string_ext((json_object *)ctx, JSON_C_TO_STRING_PRETTY);
    return fputs(s, f) < 0 || fputc('\n', f) < 0 ? eng_err_set(ENG_EIO, "write failed") : 0;
}

static int write_json(const exp_results *r, const char *path) {
    int rc = ENG_ENOMEM;
    json_object *root = json_object_new_object(), *agents = json_object_new_object(),
                *prods = json_object_new_array();
    if (!root || !agents || !prods) goto done;
    json_object_object_add(root, "run_id", json_object_new_string(r->run_id));
    json_object_object_add(root, "run_date", json_object_new_string(r->run_date));
    json_object_object_add(root, "data_source", json_object_new_string(r->data_source));
    json_object_object_add(root, "reward", json_object_new_string(r->reward_text));
    json_object_object_add(root, "config", json_object_new_string(r->config_text));
    json_object_object_add(root, "winner_immediate", json_object_new_string(exp_agent_name(r->winner_immediate)));
    json_object_object_add(root, "winner_longterm", json_object_new_string(exp_agent_name(r->winner_longterm)));
    for (int a = 0; a < EXP_N_AGENTS; a++) {
        json_object *ag = json_object_new_object();
        json_object *im = ope_result_json(&r->total_immediate[a]), *lt = ope_result_json(&r->total_longterm[a]);
        if (!ag || !im || !lt) {
            json_object_put(ag);
            json_object_put(im);
            json_object_put(lt);
            goto done;
        }
        json_object_object_add(ag, "immediate", im);
        json_object_object_add(ag, "longterm", lt);
        json_object_object_add(agents, exp_agent_name((exp_agent)a), ag);
    }
    json_object_object_add(root, "totals", agents);
    agents = NULL;
    for (int p = 0; p < r->n_products; p++) {
        const exp_product_result *pr = &r->products[p];
        json_object *o = json_object_new_object(), *pz = json_object_new_object();
        if (!o || !pz) {
            json_object_put(o);
            json_object_put(pz);
            goto done;
        }
        json_object_object_add(o, "product_id", json_object_new_string(pr->product_id));
        json_object_object_add(o, "status", json_object_new_string(exp_status_name(pr->status)));
        json_object_object_add(o, "note", json_object_new_string(pr->note));
        json_object_object_add(o, "incumbent_price", json_object_new_double(pr->incumbent_price));
        for (int a = 0; a < EXP_N_AGENTS; a++)
            json_object_object_add(pz, exp_agent_name((exp_agent)a), json_object_new_double(pr->price[a]));
        json_object_object_add(o, "price", pz);
        json_object_array_add(prods, o);
    }
    json_object_object_add(root, "products", prods);
    prods = NULL;
    json_object_object_add(root, "seconds_features", json_object_new_double(r->seconds_features));
    json_object_object_add(root, "seconds_train", json_object_new_double(r->seconds_train));
    json_object_object_add(root, "seconds_ope", json_object_new_double(r->seconds_ope));
    rc = eng_atomic_write(path, write_json_cb, root);
done:
    if (rc == ENG_ENOMEM) eng_err_set(ENG_ENOMEM, "compare: out of memory building JSON");
    json_object_put(agents);
    json_object_put(prods);
    json_object_put(root);
    return rc;
}

int exp_cmd_compare(int argc, char **argv) {
    const char *db = NULL, *cache = NULL, *preset = NULL, *config = NULL, *json = NULL;
    char *products = NULL, **ids = NULL;
    int n_ids = 0, exit_code = 1, rc, n_flags = 0, have_db = 0;
    char **flags = calloc((size_t)argc + 1, sizeof *flags);
    exp_compare_cfg cfg = exp_compare_default();
    db_history *h = NULL;
    exp_results *res = NULL;
    char source[1200] = "";
    if (!flags) {
        fprintf(stderr, "rlprice compare: out of memory\n");
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = !strcmp(a, "--db") ? &db : !strcmp(a, "--cache") ? &cache : !strcmp(a, "--preset") ? &preset
                          : !strcmp(a, "--config") ? &config : !strcmp(a, "--json") ? &json : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit_code = 0;
            goto done;
        }
        if (dst || !strcmp(a, "--products")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "rlprice compare: %s needs a value\n", a);
                usage(stderr);
                exit_code = 2;
                goto done;
            }
            if (dst) *dst = argv[++i];
            else products = argv[++i];
            if (!strcmp(a, "--db")) have_db = 1;
            continue;
        }
        flags[n_flags++] = argv[i]; /* settings: --key=value or --key value */
        if (!strchr(a, '=') && i + 1 < argc) flags[n_flags++] = argv[++i];
    }
    if ((!!have_db + !!cache + !!preset) > 1) {
        fprintf(stderr, "rlprice compare: give one of --db, --cache, --preset\n");
        exit_code = 2;
        goto done;
    }
    if (preset && strcmp(preset, "dominicks")) {
        fprintf(stderr, "rlprice compare: unknown preset '%s' (known: dominicks)\n", preset);
        exit_code = 2;
        goto done;
    }
    if ((config && exp_compare_cfg_load_file(&cfg, config)) || exp_compare_cfg_parse_flags(&cfg, n_flags, flags) ||
        exp_compare_cfg_check(&cfg)) {
        fprintf(stderr, "rlprice compare: %s\n", eng_err_msg());
        exit_code = 2;
        goto done;
    }
    if (products && !(products = strdup(products))) {
        fprintf(stderr, "rlprice compare: out of memory\n");
        goto done;
    }
    if (products && (n_ids = split_list(products, &ids)) <= 0) {
        fprintf(stderr, "rlprice compare: --products: empty list\n");
        exit_code = 2;
        goto done;
    }
    const eng_backend *be = NULL;
    if (eng_backend_select(cfg.device, &be)) {
        fprintf(stderr, "rlprice compare: %s\n", eng_err_msg());
        exit_code = 1;
        goto done;
    }
    double t0 = eng_now();
    db_history_src hs = {have_db ? db : NULL, cache, preset, (const char *const *)ids, n_ids};
    if ((exit_code = db_history_src_load(&hs, &h, source, sizeof source)) != 0) {
        fprintf(stderr, "rlprice compare: %s\n", eng_err_msg());
        goto done;
    }
    exit_code = 1;
    double t_load = eng_now() - t0;
    ENG_INFO("compare: %d products x %d periods loaded in %.2fs (%s)", h->n_products, h->n_periods, t_load, source);
    if ((rc = exp_compare_run(h, &cfg, be, progress_cb, NULL, &res))) {
        fprintf(stderr, "rlprice compare: %s\n", eng_err_msg());
        exit_code = rc == ENG_EINVAL ? 2 : 1;
        goto done;
    }
    res->seconds_load = t_load;
    free(res->data_source);
    res->data_source = strdup(source);
    if (!res->data_source) {
        fprintf(stderr, "rlprice compare: out of memory\n");
        goto done;
    }
    int loaded, fresh;
    exp_compare_last_warm(&loaded, &fresh);
    print_headline(res);
    if (cfg.ckpt_dir) printf("warm start: %d groups loaded from %s, %d trained from scratch\n", loaded, cfg.ckpt_dir, fresh);
    if (json && write_json(res, json)) {
        fprintf(stderr, "rlprice compare: %s\n", eng_err_msg());
        goto done;
    }
    exit_code = 0;
done:
    exp_results_free(res);
    db_history_free(h);
    exp_compare_cfg_free(&cfg);
    free(ids);
    free(products);
    free(flags);
    return exit_code;
}
