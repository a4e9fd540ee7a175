exec(open('sim.py').read().split("print('knn'")[0])
from sklearn.linear_model import LogisticRegression
import warnings; warnings.filterwarnings('ignore')
v2=TfidfVectorizer(analyzer='char_wb',ngram_range=(2,5),sublinear_tf=True)
T2=v2.fit_transform(tex+desc); lr=LogisticRegression(C=30,max_iter=2000).fit(T2,y); PT=lr.predict_proba(v2.transform(tdev))
print('tfidf-lr',ev(PT))
for hw in [0.3,0.5]:
  for tw in [0.1,0.2,0.3,0.5]:
    for lw in [0,0.2]:
        print(hw,tw,lw,'two views + tfidf-lr',f'{ev(KN+hw*H2+lw*LX+tw*PT):.2f}')
for k in [2,3,5]:
    KNk=np.zeros((len(Ed),C))
    for c in range(C):
        s=np.sort(S[:,y==c],1)[:,::-1][:,:k]; KNk[:,c]=s.mean(1)
    print('k',k,f'{ev(KNk+0.3*H2+0.2*LX):.2f}')
